"""benchmarks/memory.py: it runs its cases in fresh processes and prints its table right.

What is checked is the plumbing (the table's lines, the ratio computed from the peak and the
model's size, the verdict following the ratio), not the memory figures of a small model,
which the interpreter's own allocations dominate.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "memory.py"
ROW = re.compile(
    r"^(build|load)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+<= 2\.3\s+(MET|NOT MET)$")


def test_a_small_run_prints_one_row_per_case_with_its_ratio():
    finished = subprocess.run([sys.executable, str(SCRIPT), "--size", "1000"],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    header, columns, *rows = finished.stdout.strip().splitlines()
    weights = int(re.search(r"([\d,]+) bytes of parameters", header).group(1).replace(",", ""))
    assert weights == (1000 * 1000 + 1000) * 4
    assert columns.split() == ["case", "seconds", "pass", "s", "peak", "MB", "ratio", "target",
                               "result"]
    assert [ROW.match(row).group(1) for row in rows] == ["build", "load"], rows
    for row in rows:
        _, _, _, peak_mb, ratio, verdict = ROW.match(row).groups()  # (the seconds: numbers)
        # The peak is printed to 0.1 MB, so the ratio it gives is known to about 0.05 MB.
        assert float(ratio) == pytest.approx(float(peak_mb) * 1e6 / weights,
                                             abs=0.06e6 / weights + 0.005)
        assert verdict == ("MET" if float(ratio) <= 2.3 else "NOT MET")
