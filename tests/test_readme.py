"""The README's commands and code are real: CI runs its test command, its code blocks run."""

import importlib.util
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    commands = [block.strip() for block in blocks("bash")]
    assert len(commands) >= 2
    demo, test = commands[:2]
    assert "bprop demo all" in demo and "pytest" in test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


#: packages a README block may import that the test command does not always install
OPTIONAL = {"torch", "onnx", "onnxruntime", "skl2onnx", "sklearn", "matplotlib", "dask",
            "mpi4py"}


def claimed_outputs(block):
    """What a block's comments say it prints: the text after ``# prints:`` on each line."""
    return re.findall(r"# prints: (.+)$", block, flags=re.M)


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_readme_python_block_runs_and_prints_what_it_claims(index, capsys, tmp_path,
                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write files (a saved model)
    block = blocks("python")[index]
    for package in re.findall(r"^(?:from|import) (\w+)", block, flags=re.M):
        if package in OPTIONAL and importlib.util.find_spec(package) is None:
            pytest.skip(f"this README block needs {package}, which is not installed")
    if "load_mnist" in block:
        shared = ROOT.parent / "shared" / "data"
        if (shared / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            monkeypatch.setenv("BPROP_DATA", str(shared))
        elif not os.environ.get("BPROP_DATA"):
            pytest.skip("MNIST is not in ../shared/data and BPROP_DATA is not set")
    exec(compile(block, f"README block {index}", "exec"), {})
    printed = capsys.readouterr().out
    assert printed
    for claim in claimed_outputs(block):
        assert claim.strip() in printed, f"README claims {claim!r}; it printed:\n{printed}"


def test_readme_blocks_followed_by_their_output_print_exactly_that(capsys):
    block = r"((?:(?!```).)*)```"  # everything up to the block's closing fence
    pairs = re.findall(rf"```python\n{block}\n\nprints\n\n```\n{block}", README, flags=re.S)
    assert pairs, "the README shows at least one block with its output"
    for code, output in pairs:
        exec(compile(code, "README block", "exec"), {})
        assert capsys.readouterr().out == output


# How `bprop explain` prints a step: `  NAME = FORMULA    shape SHAPE`, then for a gradient
# `   [check ERROR ok]` (or MISMATCH), ERROR the relative error against central finite
# differences written as 1.8e-11. The error is rounding noise: its digits depend on the
# processor and its BLAS kernels (an AVX-512 kernel prints 1.0e-11 where another prints
# 1.8e-11), so it is judged against the tolerance, never compared digit by digit.
STEP = re.compile(r"  (?P<step>\S.* = .*?)    shape (?P<shape>\([0-9, ]*\))"
                  r"(?:   \[check (?P<error>\d\.\de[+-]\d\d) (?P<verdict>ok|MISMATCH)\])?")
CHECK_TOLERANCE = 1e-6  # explain's verdict: ok below it (tools/explain.py, _verdict)


def explain_steps(lines):
    """Each step line as (formula, shape, whether it is checked), and its check errors."""
    steps, errors = [], []
    for line in lines:
        match = STEP.fullmatch(line)
        if match:
            steps.append((match["step"], match["shape"], match["error"] is not None))
            if match["error"] is not None:
                errors.append((match["step"], float(match["error"]), match["verdict"]))
    return steps, errors


def test_the_explain_excerpt_is_what_bprop_explain_prints(capsys):
    from bprop.cli import main

    excerpt = README.split("checking each gradient against finite differences:\n\n```\n")[1]
    excerpt = excerpt.split("```")[0].strip("\n").splitlines()
    assert main(["explain"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(excerpt) == 10
    shown, shown_errors = explain_steps(excerpt)
    assert len(shown) == len(excerpt), "every excerpt line is a step as explain prints it"
    steps, errors = explain_steps(printed)
    # The same formulas and shapes, checked or not, in the same order.
    assert any(steps[i:i + len(shown)] == shown for i in range(len(steps))), (
        "the README's excerpt is not a run of what bprop explain prints:\n"
        + "\n".join(f"  {s} = shape {shape}{'  [check]' if c else ''}"
                     for s, shape, c in steps))
    # Every gradient (dL/..., delta..., dW..., db...) and nothing else is checked, in the
    # README and in the output, and every check passes.
    assert all(checked == step.startswith("d") for step, _, checked in shown + steps)
    assert len(shown_errors) == 7 and len(errors) == 8
    for step, error, verdict in shown_errors + errors:
        assert 0 <= error < CHECK_TOLERANCE and verdict == "ok", (step, error, verdict)
    assert "all gradients agree with finite differences" in printed


def test_an_explain_excerpt_with_a_wrong_formula_shape_or_check_is_refused():
    ok = "  dW2 = a1.T @ delta2    shape (3, 1)   [check 9.3e-11 ok]"
    assert explain_steps([ok]) == ([("dW2 = a1.T @ delta2", "(3, 1)", True)],
                                   [("dW2 = a1.T @ delta2", 9.3e-11, "ok")])
    assert explain_steps(["  z2 = a1 @ W2 + b2    shape (4, 1)"])[0][0][2] is False
    # Another processor's digits are the same step; a changed formula, shape or verdict is not.
    assert explain_steps([ok.replace("9.3e-11", "1.0e-11")])[0] == explain_steps([ok])[0]
    assert explain_steps([ok.replace("delta2", "delta1")])[0] != explain_steps([ok])[0]
    assert explain_steps([ok.replace("(3, 1)", "(1, 3)")])[0] != explain_steps([ok])[0]
    mismatch = "  dW2 = a1.T @ delta2    shape (3, 1)   [check 2.0e-03 MISMATCH]"
    assert explain_steps([mismatch])[1] == [("dW2 = a1.T @ delta2", 2.0e-03, "MISMATCH")]
