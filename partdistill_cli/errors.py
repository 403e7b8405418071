"""Errors a user can act on. The CLI prints their message as one line and exits non-zero, no traceback."""


class UserError(Exception):
    """Base of every error caused by input, settings or environment rather than by a bug."""
