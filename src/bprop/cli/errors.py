"""The one exception type the command line turns into a one-line message and exit status 2."""


class UsageError(Exception):
    """A mistake in what the user asked for (a bad value, a missing file, a size mismatch)."""
