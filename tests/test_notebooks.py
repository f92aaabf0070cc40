"""The research notebooks: committed without outputs, and they run headless in fast mode.

Each ``notebooks/*.ipynb`` is executed top to bottom with nbclient in a fresh kernel of this
Python (the ``python3`` kernel of the running interpreter, whatever kernels a user has
installed), from the ``notebooks/`` folder, with ``KGF_FAST=1`` (smaller catalogues, grids,
seeds and epochs; each notebook takes about a minute on a 2-core CPU). A failing cell fails
the test with its traceback.

Outputs stay out of git: a notebook with outputs or execution counts fails
:func:`test_outputs_stripped`. Strip them with::

    python tests/test_notebooks.py --strip            # every notebook
    python tests/test_notebooks.py --strip notebooks/02_fusion_variants.ipynb
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 600  # per cell; a whole notebook takes about a minute in fast mode


def test_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    for name in ("01_product_graph.ipynb", "02_fusion_variants.ipynb", "03_alignment.ipynb"):
        assert name in names, names


def dirty_cells(path: Path) -> list[str]:
    """Descriptions of the cells of ``path`` that carry outputs or execution counts."""
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i}: {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: execution_count {cell.execution_count}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_outputs_stripped(path: Path):
    found = dirty_cells(path)
    assert not found, (
        f"{path.relative_to(ROOT)} has outputs ({'; '.join(found[:5])}); strip them with "
        f"`python tests/test_notebooks.py --strip {path.relative_to(ROOT)}` before committing"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("KGF_FAST", "1")  # the kernel inherits this environment
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))  # connection files; no $HOME needed
    notebook = nbformat.read(path, as_version=4)
    # no kernel directories: only the native kernel, i.e. this interpreter (sys.executable)
    manager = KernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )
    client = nbclient.NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    print(f"{path.name}: {time.perf_counter() - started:.1f} s in fast mode")


def strip(paths: list[Path]) -> None:
    """Remove outputs, execution counts and run metadata (cell timings, widget state, the
    interpreter's version) from notebooks, in place."""
    import nbformat

    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
            for key in ("execution", "collapsed", "scrolled"):
                cell.metadata.pop(key, None)
        notebook.metadata.pop("widgets", None)
        language = notebook.metadata.get("language_info", {}).get("name", "python")
        notebook.metadata["language_info"] = {"name": language}  # no interpreter version
        nbformat.write(notebook, path)
        print(f"stripped {path}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "--strip":
        sys.exit(__doc__)
    strip([Path(a) for a in args[1:]] or NOTEBOOKS)
