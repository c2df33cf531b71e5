"""The ``bprop`` command: one subcommand per job (see ``bprop --help``)."""

from .main import main

__all__ = ["main"]
