"""Errors a user can act on. The CLI prints their message as one line and exits non-zero, no traceback."""


class UserError(Exception):
    """Base of every error caused by input, settings or environment rather than by a bug."""


class ConfigError(UserError, ValueError):
    """A setting is out of range or names something that does not exist; the message says which."""


class TeacherError(UserError, RuntimeError):
    """A teacher cannot run (missing weights, missing package); the message says how to fix it."""
