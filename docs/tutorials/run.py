"""Execute the tutorial notebooks and store their outputs.

Usage::

    python docs/tutorials/run.py                    # run every notebook, write outputs in place
    python docs/tutorials/run.py 01-*.en.ipynb      # only the named ones
    python docs/tutorials/run.py --check            # run in memory, write nothing; exit 1 on error
    python docs/tutorials/run.py --check --quick    # the same with BPROP_TUTORIAL_QUICK=1

Each notebook runs in a fresh kernel started with the Python running this script (so the kernel
sees the same installed bprop, whatever Jupyter kernels the machine has registered), with its
working directory set to docs/tutorials and a limit of 120 s per cell. ``--quick`` sets the
environment variable ``BPROP_TUTORIAL_QUICK=1``, which the notebooks read to cut long training;
the stored outputs are those of full runs. The kernel is also given ``BPROP_REPOSITORY``, the
repository's root, so that a notebook run from another folder (the tests run copies) still finds
files such as ``recipes/``; opened in Jupyter from ``docs/tutorials`` it falls back to ``../..``.
The MNIST notebooks read the data where ``bprop.datasets.load_mnist`` looks (set ``BPROP_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets import default

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 120
QUICK_VARIABLE = "BPROP_TUTORIAL_QUICK"
REPOSITORY_VARIABLE = "BPROP_REPOSITORY"


def notebooks() -> list[Path]:
    """Every tutorial notebook, in name order."""
    return sorted(HERE.glob("*.ipynb"))


def _kernel_manager_class(spec_dir: Path) -> type[AsyncKernelManager]:
    # A "python3" kernelspec of our own whose argv names sys.executable: a registered python3
    # kernel may belong to another interpreter, one without bprop.
    kernel = spec_dir / "python3"
    kernel.mkdir(parents=True, exist_ok=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))

    class Manager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _only_our_kernelspec(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[str(spec_dir)], ensure_native_kernel=False)

    return Manager


def execute(path: Path, quick: bool = False, cwd: Path = HERE) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` and return it with its new outputs (the file is untouched).

    Raises nbclient's CellExecutionError when a cell fails.
    """
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timings from an older run
    saved = os.environ.get(QUICK_VARIABLE)
    # The kernel inherits this process's environment when it starts.
    os.environ.setdefault(REPOSITORY_VARIABLE, str(HERE.parent.parent))
    if quick:
        os.environ[QUICK_VARIABLE] = "1"
    else:
        os.environ.pop(QUICK_VARIABLE, None)
    try:
        with tempfile.TemporaryDirectory() as spec_dir:
            # nbclient makes the kernel manager from this class, so it also shuts the kernel
            # down and closes its channels.
            # record_timing=False: no dates in the cells' metadata, so a rerun that changes
            # nothing leaves the files as they were.
            client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                    record_timing=False,
                                    kernel_manager_class=_kernel_manager_class(Path(spec_dir)),
                                    resources={"metadata": {"path": str(cwd)}})
            client.execute()
    finally:
        if saved is None:
            os.environ.pop(QUICK_VARIABLE, None)
        else:
            os.environ[QUICK_VARIABLE] = saved
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="execute in memory without writing; exit 1 if a cell fails")
    parser.add_argument("--quick", action="store_true", help=f"set {QUICK_VARIABLE}=1")
    args = parser.parse_args(argv)
    paths = [HERE / name for name in args.names] if args.names else notebooks()
    failed = []
    for path in paths:
        start = time.perf_counter()
        try:
            notebook = execute(path, quick=args.quick)
        except CellExecutionError as error:
            failed.append(path.name)
            print(f"FAILED {path.name}\n{error}", file=sys.stderr)
            continue
        if not args.check:
            nbformat.write(notebook, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
