"""The one exception type for mistakes a user can make (bad file, bad key, bad config).

The CLI prints its message as a single line and exits non-zero, without a traceback.
Messages name the file or key at fault and say what to do about it.
"""


class SkiptoolError(Exception):
    """An error caused by user input; `str(err)` is the whole message shown to the user."""


def fail(message: str) -> "NoReturn":  # noqa: F821 - typing only
    raise SkiptoolError(message)
