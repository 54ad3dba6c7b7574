"""Errors shown to people without a traceback (the CLI prints the message, exit code 2)."""


class UserError(Exception):
    """A problem the user can fix: a bad argument, a missing file, a refused connection."""
