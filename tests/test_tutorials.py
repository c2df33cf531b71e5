"""The tutorial notebooks (docs/tutorials): each runs without error in quick mode within a
minute, was stored with its outputs, agrees with its stored final numbers, and has a Chinese
twin with the same code."""

import importlib.util
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from support import load_script, real_mnist_dir

nbformat = pytest.importorskip("nbformat", reason="the tutorial tests need nbformat")
pytest.importorskip("nbclient", reason="the tutorial tests need nbclient")
pytest.importorskip("ipykernel", reason="the tutorial tests need ipykernel (the kernel)")
pytest.importorskip("matplotlib", reason="the tutorials draw with matplotlib")

TUTORIALS = Path(__file__).resolve().parent.parent / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
ENGLISH = [path for path in NOTEBOOKS if path.name.endswith(".en.ipynb")]
SECONDS = 60  # the limit for one notebook, in quick mode, on two cores
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _load_runner():
    return load_script(TUTORIALS / "run.py", "tutorials_run")


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text_of(cell) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream" and output.name == "stdout":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def numbers(text: str) -> np.ndarray:
    return np.array([float(match) for match in NUMBER.findall(text)])


def skip_unless_needs_are_met(notebook, monkeypatch) -> None:
    """A notebook lists in its metadata what it needs beyond the core (``needs``: package names
    and "mnist"); without one of them its run is skipped with the reason."""
    for need in notebook.metadata.get("bprop_tutorial", {}).get("needs", []):
        if need == "mnist":
            from bprop.data.mnist import MNIST, data_folder

            if data_folder(MNIST) is None:  # (not where load_mnist looks: ../shared?)
                monkeypatch.setenv("BPROP_DATA", str(real_mnist_dir()))  # the kernel inherits it
        elif importlib.util.find_spec(need) is None:
            pytest.skip(f"this tutorial needs {need}, which is not installed")


def test_there_are_tutorials_in_both_languages():
    assert ENGLISH, f"no *.en.ipynb in {TUTORIALS}"
    assert len(NOTEBOOKS) == 2 * len(ENGLISH), [path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("english", ENGLISH, ids=lambda path: path.name)
def test_chinese_twin_has_the_same_code(english):
    chinese = english.with_name(english.name.replace(".en.", ".zh."))
    assert chinese.exists(), f"{english.name} has no Chinese twin {chinese.name}"
    en, zh = nbformat.read(english, as_version=4), nbformat.read(chinese, as_version=4)
    assert [c.source for c in code_cells(en)] == [c.source for c in code_cells(zh)]
    assert en.metadata.get("bprop_tutorial") == zh.metadata.get("bprop_tutorial")
    prose = "".join(cell.source for cell in zh.cells if cell.cell_type == "markdown")
    assert re.search(r"[\u4e00-\u9fff]", prose), f"{chinese.name} has no Chinese prose"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_stored_notebook_was_run_in_order(path):
    cells = code_cells(nbformat.read(path, as_version=4))
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), \
        f"{path.name} was not stored fresh from a run (execution counts {counts}): " \
        "regenerate it with python docs/tutorials/run.py"
    assert text_of(cells[-1]).strip(), f"{path.name}: the final code cell has no output"
    assert not [o for c in cells for o in c.outputs if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_and_reproduces_its_final_numbers(path, tmp_path, monkeypatch):
    from nbclient.exceptions import CellExecutionError

    stored = nbformat.read(path, as_version=4)
    skip_unless_needs_are_met(stored, monkeypatch)
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    start = time.perf_counter()
    try:
        fresh = _load_runner().execute(copy, quick=True, cwd=tmp_path)
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}")
    seconds = time.perf_counter() - start
    assert seconds < SECONDS, f"{path.name} took {seconds:.0f} s in quick mode"
    assert not [o for c in code_cells(fresh) for o in c.outputs if o.output_type == "error"]

    # The stored outputs come from a full run; a notebook whose last cell reports a number
    # that quick mode changes says by how much it may differ in its metadata.
    atol = stored.metadata.get("bprop_tutorial", {}).get("final_cell_atol", 1e-7)
    expected = numbers(text_of(code_cells(stored)[-1]))
    got = numbers(text_of(code_cells(fresh)[-1]))
    assert expected.size and expected.shape == got.shape, (expected, got)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=atol)
