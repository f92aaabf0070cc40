"""``kgf train --nproc``: torch.distributed.run workers with DDP on CPU (gloo), rank-0
checkpoints, a killed worker's run continued with ``--resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_trainer import toy_workspace

from fusion.distributed import LaunchError, launch, worker_argv
from kgfusion.cli import main

ROOT = Path(__file__).resolve().parents[1]


def command(ws, tr, te, *extra) -> list[str]:
    return ["train", str(ws), "--labels", str(tr), "--test", str(te), "--hidden", "8",
            "--batch-size", "8", "--fanout=-1,-1", *extra]  # fmt: skip


def workers(*argv, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "kgfusion.cli", *argv], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)  # fmt: skip


def losses(run_dir: Path) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if "loss" in x]


def test_two_workers_follow_the_loss_curve_of_one(tmp_path):
    ws, tr, te = toy_workspace(tmp_path)
    assert main(command(ws, tr, te, "--epochs", "4", "--run", "one")) == 0
    proc = workers(*command(ws, tr, te, "--epochs", "4", "--run", "two", "--nproc", "2"))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert out.count("run two in") == 1  # rank 0 reports
    one, two = losses(ws / "models" / "one"), losses(ws / "models" / "two")
    assert len(one) == len(two) == 4
    # the same global batch of 8: each worker takes 4 seeds, DDP averages the gradients
    assert two == pytest.approx(one, rel=1e-4)
    assert (ws / "models" / "two" / "complete.json").is_file()


@pytest.mark.slow
def test_a_killed_worker_leaves_a_run_that_resume_continues(tmp_path):
    ws, tr, te = toy_workspace(tmp_path)
    run = ws / "models" / "killed"
    epochs = 100_000  # never reached: the worker is killed long before
    argv = command(ws, tr, te, "--epochs", str(epochs), "--set", "trainer.checkpoint_every=1",
                   "--set", f"trainer.patience={epochs}", "--run", "killed", "--nproc", "2")  # fmt: skip
    proc = workers(*argv)
    deadline = time.monotonic() + 120

    def checkpointed_epochs() -> int:  # the newest checkpoint replaces the one before
        names = [p.name.removeprefix("checkpoint-") for p in run.glob("checkpoint-*")]
        found = [int(n) for n in names if n.isdigit()]
        return max(found, default=0)

    while checkpointed_epochs() < 2:  # two epochs done, the run goes on
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.05)
    children = []
    for task in Path(f"/proc/{proc.pid}/task").iterdir():
        children += (task / "children").read_text().split()
    assert len(children) == 2  # the two workers under torchrun's agent
    os.kill(int(children[-1]), signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--resume" in out, out
    assert not (run / "complete.json").exists()
    done = losses(run)
    assert 2 <= len(done) < epochs
    # continue it (one process here; the checkpoint does not depend on the worker count)
    epochs = len(done) + 2
    assert main(command(ws, tr, te, "--epochs", str(epochs), "--run", "killed", "--resume")) == 0
    after = losses(run)
    assert len(after) == epochs and after[:2] == done[:2]
    assert (run / "complete.json").is_file()


def test_nproc_above_the_cores_warns_and_a_failed_worker_is_reported():
    with (pytest.warns(UserWarning, match="--nproc 3 is more than the 2 CPU core"),
          pytest.raises(LaunchError, match="--resume")):  # fmt: skip
        launch(3, "fusion.no_such_module", [], cores=2)


def test_nproc_needs_batch_size(tmp_path, capsys):
    ws, tr, te = toy_workspace(tmp_path)
    argv = ["train", str(ws), "--labels", str(tr), "--nproc", "2"]
    assert main(argv) == 2
    assert "--nproc needs --batch-size" in capsys.readouterr().err
    assert worker_argv(["train", "ws", "--nproc", "2", "--nproc=3", "--seed", "1"]) == [
        "train", "ws", "--seed", "1",
    ]  # fmt: skip


def test_close_frees_a_ddp_wrapper_held_by_a_cycle_before_the_group_goes(tmp_path):
    """A DDP wrapper kept alive by a reference cycle used to outlive the process group and be
    freed at interpreter exit, where gloo could abort the worker ("terminate called without
    an active exception"): :meth:`Context.close` collects it while the group still exists."""
    import gc

    import torch
    from torch.nn.parallel import DistributedDataParallel

    from fusion.distributed import Context

    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    ctx = Context(rank=0, world=2, started=True)  # a group of one stands in for two
    gc.disable()  # no automatic collection between here and close()
    try:
        holder = {"model": ctx.wrap(torch.nn.Linear(2, 2), torch.device("cpu"))}
        holder["self"] = holder  # the cycle
        del holder
        alive = lambda: sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())  # noqa: E731
        assert alive() == 1
        ctx.close()
        assert alive() == 0 and not torch.distributed.is_initialized()
    finally:
        gc.enable()
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
