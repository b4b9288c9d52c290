"""The project's own input errors. The command line turns these, and data.DataError, into one line on stderr
and exit status 2; any other exception is a bug and keeps its traceback."""


class UsageError(ValueError):
    """A bad input: an option, a config field, a file's content. The message names the field (or file) and
    what is allowed."""
