"""``bprop``: the command-line entry point and its subcommands.

Every subcommand has ``--help``. Errors a user can act on (a missing file, a bad value, an
unknown dataset) print one line saying what is wrong and exit with status 2; ``--debug`` shows
the full traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bprop", description="Neural networks with hand-written backpropagation.")
    parser.add_argument("--version", action="version", version=f"bprop {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True
    from .. import comparison

    compare = commands.add_parser(
        "compare", help="train the same network with bprop, scikit-learn and PyTorch",
        description="Train the same network (architecture, optimizer, learning rate, batch "
        "size, epochs, initial weights) with bprop, scikit-learn and PyTorch; print a table "
        "and write it as JSON and Markdown with loss-curve and confusion-matrix pictures.")
    comparison.build_parser(compare)
    compare.set_defaults(run=comparison.run_from_arguments)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        print("bprop: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, FileNotFoundError, ImportError, OSError) as error:
        if args.debug:
            raise
        print(f"bprop {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
