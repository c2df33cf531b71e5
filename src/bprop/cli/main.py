"""``bprop``: the command-line entry point and its subcommands.

Every subcommand has ``--help``. Errors a user can act on (a missing file, a bad config key or
value, an unknown dataset, layer sizes that do not fit the data) print one line saying what is
wrong and exit with status 2; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import re
import sys

from .._version import __version__
from ..backend.devices import DeviceUnavailableError
from ..data.idx import IDXError
from ..io import ModelFileError
from .errors import UsageError


class HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless it says it already or has none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # (by identity: a default of 0 or 0.0 equals False, and is worth showing)
        if ("default" in text.lower() or default is None or default is False
                or default is argparse.SUPPRESS or not action.option_strings
                or isinstance(action, argparse._HelpAction)):
            return text
        return f"{text} (default: {default})".lstrip()


def _show_every_default(parser: argparse.ArgumentParser) -> None:
    """Give every option of ``parser`` and its subcommands that has no help text one that
    says its default: argparse shows no line at all for an option without help."""
    for action in parser._actions:
        default = action.default
        if (not (action.help or "").strip() and action.option_strings and default is not None
                and default is not False and default is not argparse.SUPPRESS):
            action.help = "(default: %(default)s)"
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _show_every_default(subparser)


class Parser(argparse.ArgumentParser):
    """An argument parser that suggests the closest subcommand, choice or option to a mistyped
    one ("did you mean ...?")."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.commands: dict[str, Parser] = {}

    def options(self) -> list[str]:
        return [flag for action in self._actions for flag in action.option_strings]

    def error(self, message: str):
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = [c.strip().strip("'\"") for c in match[2].split(",")]
            message += _suggestion(match[1], choices)
        super().error(message)

    def parse_known_args(self, args=None, namespace=None):
        """As argparse's, except that the top parser refuses unknown arguments at once, with
        the subcommand's usage and the closest option it has."""
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.commands:  # the top parser: name the subcommand's options
            command = self.commands.get(getattr(namespace, "command", None), self)
            unknown = [word for word in extras if word.startswith("-")]
            hint = _suggestion(unknown[0].split("=")[0], command.options() + self.options()) \
                if unknown else ""
            command.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace, extras


def _suggestion(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def build_parser() -> argparse.ArgumentParser:
    from .. import demos
    from ..tools import compare as comparison
    from . import export, teach, train

    parser = Parser(
        prog="bprop", description="Neural networks with hand-written backpropagation.")
    parser.add_argument("--version", action="version", version=f"bprop {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True

    def command(name: str, run, help: str, description: str = ""):
        sub = commands.add_parser(name, help=help, description=description or help)
        parser.commands[name] = sub
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show full tracebacks instead of one-line errors")
        sub.set_defaults(run=run)
        return sub

    demo = command("demo", teach.run_demo, "run the seed tutorials, with their pictures")
    demo.add_argument("name", nargs="?", default="all",
                      choices=[*demos.DEMOS, "activations", "all"],
                      help="which tutorial (default: all); 'activations' draws the "
                      "activation functions and their derivatives")
    demo.add_argument("--out", default="demo_output", help="folder for the pictures")

    train_parser = command(
        "train", train.run_train, "train a network on a dataset and save it",
        "Train a network on a built-in dataset, MNIST, Fashion-MNIST or a CSV file; save the "
        "model and a run folder with metrics (CSV, JSON), pictures and the config used. "
        "Settings come from the options or a TOML file (--config). Ctrl-C stops training and "
        "saves the best model so far.")
    train.add_train_arguments(train_parser)

    evaluate = command(
        "evaluate", train.run_evaluate, "score a saved model on test data",
        "Score a saved model: on every row of a CSV file (--data FILE.csv, its columns matched "
        "to the model's by header name), or, without --data, on the test split of the data it "
        "was trained on, split as train split it. Prints how many rows it scored.")
    train.add_model_arguments(evaluate, "a CSV file (every row is scored) or a built-in "
                              "dataset's name (its test part); default: the run's own test "
                              "split")
    evaluate.add_argument("--data-dir", default=None, help=train.DATA_DIR_HELP)
    evaluate.add_argument("--seed", type=int, default=None,
                          help="the split's seed (default: the run's, from its config.toml)")

    predict = command(
        "predict", train.run_predict, "write a saved model's predictions for a CSV file",
        "Write a saved model's predictions for each row of a CSV file. Its columns are matched "
        "to the model's features by header name, in any order; a file without a header is "
        "read by position.")
    train.add_model_arguments(predict, "a CSV file of samples")
    predict.add_argument("--output", default="predictions.csv",
                         help="where to write them ('-': standard output)")

    compare = command(
        "compare", comparison.run_from_arguments,
        "train the same network with bprop, scikit-learn and PyTorch",
        "Train the same network (architecture, optimizer, learning rate, batch size, epochs, "
        "initial weights) with bprop, scikit-learn and PyTorch; print a table and write it as "
        "JSON and Markdown with loss-curve and confusion-matrix pictures.")
    comparison.build_parser(compare)

    export_parser = command(
        "export", export.run_export, "write a saved model as an ONNX file or a PyTorch program",
        "Write a saved model for other runtimes: an ONNX file that does what bprop predict "
        "does (raw features in, the run's scaling included; class names and probabilities, or "
        "values in the target's units, out), or a torch.export program of the network.")
    export.add_export_arguments(export_parser)

    gradcheck = command("gradcheck", teach.run_gradcheck,
                        "check hand-written gradients against finite differences")
    teach.add_gradcheck_arguments(gradcheck)

    explain = command(
        "explain", teach.run_explain, "show every step of backpropagation on a small network",
        "For a small network and a few samples, print each layer's forward values, the loss, "
        "each delta and each gradient with its shape and formula, each checked against finite "
        "differences; as terminal text, Markdown or a self-contained HTML page.")
    teach.add_explain_arguments(explain)
    _show_every_default(parser)
    return parser


def one_line(error: BaseException) -> str:
    """The error's message on one line (a long message keeps all of its advice)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.run(args)
    except KeyboardInterrupt:
        print("bprop: interrupted", file=sys.stderr)
        return 130
    except FloatingPointError as error:  # training diverged (TrainingDivergedError)
        if args.debug:
            raise
        print(f"bprop {args.command}: training failed: {one_line(error)}", file=sys.stderr)
        return 1
    except (UsageError, ValueError, TypeError, FileNotFoundError, ImportError, IDXError,
            ModelFileError, OSError, DeviceUnavailableError) as error:
        if args.debug:
            raise
        print(f"bprop {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except csv.Error as error:  # a CSV file that no reader of ours has explained
        if args.debug:
            raise
        print(f"bprop {args.command}: error: a CSV file is unreadable: {one_line(error)}",
              file=sys.stderr)
        return 2
    except MemoryError as error:
        if args.debug:
            raise
        detail = f" ({one_line(error)})" if str(error) else ""
        print(f"bprop {args.command}: error: not enough memory{detail}; use a smaller dataset, "
              "model or --batch-size, or a machine with more memory", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0
