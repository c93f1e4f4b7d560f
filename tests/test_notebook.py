"""examples/lecture.ipynb: stored without outputs, and executed from top to bottom by a real kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "lecture.ipynb"


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Raises CellExecutionError, with the cell and its traceback, if any cell fails (its asserts included).
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def _outputs(nb, start: str) -> list:
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(start))
    return cell.outputs


def _mimetypes(outputs) -> set[str]:
    return {kind for o in outputs for kind in o.get("data", {})}


def _stdout(outputs) -> str:
    return "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")


def test_the_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_the_notebook_runs_and_shows_the_lecture(executed):
    # Derivations display as LaTeX, numeric results as an HTML table, figures as images.
    assert "text/latex" in _mimetypes(_outputs(executed, 'story = solve("rnn"'))
    assert r"\prod" in "".join(o["data"]["text/latex"] for o in _outputs(executed, "carousel = solve"))
    assert "text/html" in _mimetypes(_outputs(executed, "run = gradients("))
    figures = [c for c in executed.cells if c.cell_type == "code" and c.source.startswith("figure(")]
    assert len(figures) >= 6 and all("image/png" in _mimetypes(c.outputs) for c in figures)
    assert "dh_50/dh_0 = 1125899906842624" in _stdout(_outputs(executed, "exploding, vanishing"))
    assert "day-5 prediction 0.0064" in _stdout(_outputs(executed, "from numeric.studies import lecture_example"))
    assert "rnn (pytorch init), L = 50: failed within" in _stdout(_outputs(executed, "from numeric.training.train import"))
    assert "lstm (pytorch init), L = 50: failed within" in _stdout(_outputs(executed, "lstm_pytorch = run("))
    assert "lstm (chrono init), L = 50: learned after" in _stdout(_outputs(executed, "lstm = run("))
    assert "the food word holds" in _stdout(_outputs(executed, "from numeric.training.sensitivity import"))
