"""The two ways a request can fail; the CLI turns them into exit codes in one place."""

from __future__ import annotations

from contextlib import contextmanager


class UnrolledError(Exception):
    """A failure at run time (exit code 1). The message is one line for the user.

    An error raised in a worker process is pickled back to the parent: it is rebuilt from the
    arguments it was made with, which a subclass keeps in ``_made_with``.

    >>> import pickle
    >>> pickle.loads(pickle.dumps(InvalidValue("hidden", "must be from 1 to 4096, got 0"))).field
    'hidden'
    """

    def __reduce__(self):
        return type(self), getattr(self, "_made_with", self.args)


class UsageError(UnrolledError):
    """A bad option (exit code 2), raised by the CLI alone, which knows the options' names;
    the library raises ``InvalidValue`` naming its own field.

    >>> str(UsageError("--steps", "must be a whole number >= 1, got 0"))
    '--steps: must be a whole number >= 1, got 0'
    """

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option, self._made_with = option, (option, message)


class InvalidValue(UnrolledError):
    """A value outside what is allowed, named by the library's own field (``hidden``,
    ``params``, ``inputs``); the CLI alone maps a field to its option (exit code 2).

    >>> InvalidValue("hidden", "must be from 1 to 4096, got 0").field
    'hidden'
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self._made_with = field, (field, message)


class NonFinite(UnrolledError):
    """A value that left the real numbers during a run: overflow, log or sqrt of a negative, 0/0.

    >>> str(NonFinite("h_2[0]", 2, "inf"))
    'h_2[0] is inf at step 2: not a finite real number (overflow, a log or sqrt of a negative number, or a division by zero)'
    """

    def __init__(self, what: str, step: int | None, value: str, where: str = ""):
        at = f"at step {step}" if step is not None else "in the backward pass"
        super().__init__(f"{what} is {value} {at}{where}: not a finite real number "
                         "(overflow, a log or sqrt of a negative number, or a division by zero)")
        self.what, self.step, self._made_with = what, step, (what, step, value, where)


@contextmanager
def named():
    """For the Python API: an ``InvalidValue`` raised inside says which argument it is about
    ("hidden: must be ..."), as the CLI's does with the option's name.

    >>> with named():
    ...     raise InvalidValue("hidden", "must be from 1 to 4096, got 0")
    Traceback (most recent call last):
    ...
    derive.errors.InvalidValue: hidden: must be from 1 to 4096, got 0
    """
    try:
        yield
    except InvalidValue as error:
        raise InvalidValue(error.field, f"{error.field}: {error}") from None
