"""The README's commands and code are real: CI runs its test command, its code blocks run."""

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


def claimed_outputs(block):
    """What a block's comments say it prints: the text after ``# prints:`` on each line."""
    return re.findall(r"# prints: (.+)$", block, flags=re.M)


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_readme_python_block_runs_and_prints_what_it_claims(index, capsys, tmp_path,
                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write files (a saved model)
    block = blocks("python")[index]
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


def test_the_explain_excerpt_is_what_bprop_explain_prints(capsys):
    from bprop.cli import main

    excerpt = README.split("checking each gradient against finite differences:\n\n```\n")[1]
    excerpt = excerpt.split("```")[0].strip("\n").splitlines()
    assert main(["explain"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(excerpt) == 10 and all(line in printed for line in excerpt)
