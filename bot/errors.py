"""Errors a user can act on.

A `UserError` is printed as one line (no traceback) and ends the command with exit code 2.
Its message names where the problem is (file, key, value) and what was expected.
"""


class UserError(Exception):
    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(UserError):
    """A config, accounts, roster, scenario or overrides file is wrong."""
