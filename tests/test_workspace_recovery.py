"""What killed workspace swaps leave behind, and its repair on the next build or open
(issue 13, item 10). The states are made by the real code in a child process that is
SIGKILLed at the chosen moment: inside a build, or between the two renames of a replace."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import kg
from kg.workspace import atomic_directory, recover_folder

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kills a child with SIGKILL")
ROOT = Path(__file__).resolve().parents[1]
TTL = """\
@prefix s: <http://schema.org/> .
<http://e/p1> a s:Product ; s:name "Ring" ; s:brand <http://e/b1> .
<http://e/b1> a s:Brand ; s:name "Aurum" .
"""

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from kg.workspace import atomic_directory

    target, moment = Path(sys.argv[1]), sys.argv[2]
    renames = []
    real_replace = os.replace

    def replace(src, dst):  # the swap's renames: die after the first one
        renames.append(dst)
        if moment == "between-renames" and len(renames) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)

    os.replace = replace
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "manifest.json").write_text("half-written")
        (tmp / "big.bin").write_bytes(bytes(2_000_000))
        if moment == "during-build":
            os.kill(os.getpid(), signal.SIGKILL)
        if moment == "hold":  # a live concurrent build: wait for a line on stdin
            print("building", flush=True)
            sys.stdin.readline()
    """
)


def child(target: Path, moment: str, **options) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(target), moment], env=env,
                            text=True, **options)  # fmt: skip


def killed(target: Path, moment: str) -> None:
    assert child(target, moment).wait() == -9  # SIGKILL


@pytest.fixture
def ws(tmp_path):
    source = tmp_path / "cat.ttl"
    source.write_text(TTL)
    return kg.load_rdf(source).save(tmp_path / "ws")


def warned(call) -> tuple[object, list[str]]:
    """``call()``'s result and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught]


def siblings(folder: Path) -> list[str]:
    return sorted(p.name.split("-")[0] for p in folder.parent.iterdir() if p.name.startswith("."))


def test_kill_between_the_two_renames_is_restored_on_open(ws):
    before = (ws / "manifest.json").read_bytes()
    killed(ws, "between-renames")
    assert not ws.exists() and siblings(ws) == [".ws.old", ".ws.tmp"]  # the data sits in .old
    graph, said = warned(lambda: kg.load_graph(ws))  # was: "not a kgfusion workspace"
    assert graph.num_nodes == 2 and (ws / "manifest.json").read_bytes() == before
    assert said[0].startswith(f"restored {ws} from .ws.old-") and "interrupted" in said[0]
    assert "removed" in said[1] and "(2.0 MB), left by an interrupted build" in said[1]
    assert siblings(ws) == []


def test_kill_during_a_build_is_cleaned_by_the_next_build(ws):
    killed(ws, "during-build")
    assert siblings(ws) == [".ws.tmp"]
    graph, said = warned(lambda: kg.load_graph(ws))
    assert graph.num_nodes == 2 and siblings(ws) == [], "open removes the dead build's folder"
    assert len(said) == 1 and "interrupted build" in said[0]
    killed(ws, "during-build")
    with (
        pytest.warns(UserWarning, match="removed .*interrupted build"),
        atomic_directory(ws, overwrite=True) as tmp,
    ):
        (tmp / "manifest.json").write_text("new")
    assert siblings(ws) == [] and (ws / "manifest.json").read_text() == "new"


def test_a_live_builds_temp_folder_is_left_alone(ws):
    build = child(ws, "hold", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert build.stdout.readline() == "building\n"
        assert recover_folder(ws) == [] and siblings(ws) == [".ws.tmp"]
        with atomic_directory(ws, overwrite=True) as mine:  # this process builds too
            assert recover_folder(ws) == [] and mine.is_dir()
            (mine / "manifest.json").write_text("mine")
        assert siblings(ws) == [".ws.tmp"]
    finally:
        build.communicate("go\n")
    assert build.returncode == 0 and siblings(ws) == []
    assert (ws / "manifest.json").read_text() == "half-written"  # the other build finished


def test_leftover_old_copy_beside_the_workspace_is_removed(ws, tmp_path):
    stale = tmp_path / ".ws.old-1a2b3c4d"  # an older version's name: no owner recorded
    stale.mkdir()
    (stale / "manifest.json").write_text("previous")
    with pytest.warns(UserWarning, match="removed .*interrupted replace"):
        kg.load_graph(ws)
    assert siblings(ws) == []


def test_temp_folder_without_owner_is_removed_only_when_old(ws, tmp_path):
    legacy = tmp_path / ".ws.tmp-0badc0de"
    legacy.mkdir()
    assert recover_folder(ws) == [] and legacy.is_dir()  # may be a build in progress
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(legacy, (two_days_ago, two_days_ago))
    with pytest.warns(UserWarning):
        assert len(recover_folder(ws)) == 1
    assert not legacy.exists()
    unrelated = tmp_path / ".ws2.tmp-0badc0de"  # another folder's sibling is not ours
    unrelated.mkdir()
    os.utime(unrelated, (two_days_ago, two_days_ago))
    assert recover_folder(ws) == [] and unrelated.is_dir()
