"""The notebooks in notebooks/ run top to bottom (nbclient, a fresh kernel each, from the
notebooks folder as a user opens them), and are committed with their outputs stripped."""

import os

import nbformat
import pytest

from tests.configs import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_four_notebooks_committed_without_outputs():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart", "02_train_and_evaluate", "03_sharding", "04_export_to_pytorch",
    ]  # fmt: skip
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # The kernel sees one CPU device, as a user's does (not the test session's 8 fake ones,
    # which only slow every compile down); the sharding notebook asks for its 8 itself.
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()  # raises CellExecutionError, with the cell and its traceback, on any failure
    code = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
