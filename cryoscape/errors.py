"""Errors that the command line reports as one clear line (no traceback) with a non-zero exit."""


class CryoscapeError(Exception):
    """A problem with the user's input or request: the message is shown to the user as is."""


class InputError(CryoscapeError, ValueError):
    """An input file or argument is missing, malformed or inconsistent."""


class OverwriteError(CryoscapeError, FileExistsError):
    """An output file already exists and ``--force`` was not given."""
