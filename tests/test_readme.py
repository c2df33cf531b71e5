"""The README's commands and code are real: CI runs its test command, its code blocks run."""

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
    assert "examples/seed_demos.py" in demo and "pytest" in test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_readme_python_block_runs(index, capsys):
    exec(compile(blocks("python")[index], f"README block {index}", "exec"), {})
    assert capsys.readouterr().out  # each block prints what it shows
