"""Writing outputs atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, BinaryIO

from derive.errors import InvalidValue


def check_replaceable(path: Path, field: str, force: bool) -> None:
    """Refuse to write ``path`` unless it is new, or ``force`` and it is a regular file or a symlink.

    A symlink is replaced itself, never its target.  Anything else (a folder, a
    device node such as /dev/null, a pipe, a socket) is never replaced.

    >>> check_replaceable(Path("/dev/null"), "out", force=True)
    Traceback (most recent call last):
    ...
    derive.errors.InvalidValue: /dev/null is a character device, not a regular file; --force replaces regular files (and symlinks, not their targets) only
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        if not force:
            raise InvalidValue(field, f"{path} exists; add --force to replace it")
        return
    kinds = {stat.S_ISDIR: "folder", stat.S_ISCHR: "character device", stat.S_ISBLK: "block device",
             stat.S_ISFIFO: "named pipe", stat.S_ISSOCK: "socket"}
    kind = next((name for test, name in kinds.items() if test(mode)), "special file")
    raise InvalidValue(field, f"{path} is a {kind}, not a regular file; --force replaces regular files "
                             "(and symlinks, not their targets) only")


def write_atomic(path: str, field: str, write: Callable[[BinaryIO], None], force: bool = True) -> None:
    """Write ``path`` through ``write(file)``; on any error nothing is left behind."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidValue(field, f"folder {str(target.parent)!r} does not exist")
    check_replaceable(target, field, force)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise InvalidValue(field, f"cannot write in {str(target.parent)!r}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        # again just before the rename: the path may have changed while we wrote
        check_replaceable(target, field, force)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
