"""Writing outputs atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, BinaryIO

from derive.errors import UsageError


def write_atomic(path: str, option: str, write: Callable[[BinaryIO], None], force: bool = True) -> None:
    """Write ``path`` through ``write(file)``; on any error nothing is left behind."""
    target = Path(path)
    if not target.parent.is_dir():
        raise UsageError(option, f"folder {str(target.parent)!r} does not exist")
    if target.exists() and not force:
        raise UsageError(option, f"{path} exists; add --force to replace it")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise UsageError(option, f"cannot write in {str(target.parent)!r}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
