"""Writing outputs atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import secrets
import signal
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable

from derive.errors import InvalidValue, UnrolledError


def check_target(path: str, field: str, force: bool) -> Path:
    """``path`` as a file that may be written: not empty, in a folder that exists, replaceable."""
    if not path:
        raise InvalidValue(field, "is empty; give a file name")
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidValue(field, f"folder {str(target.parent)!r} does not exist")
    check_replaceable(target, field, force)
    return target


def check_replaceable(path: Path, field: str, force: bool) -> None:
    """Refuse to write ``path`` unless it is new, or ``force`` and it is a regular file or a symlink.

    A symlink is replaced itself, never its target.  Anything else (a folder, a
    device node such as /dev/null, a pipe, a socket) is never replaced.

    >>> check_replaceable(Path("/dev/null"), "out", force=True)
    Traceback (most recent call last):
    ...
    derive.errors.InvalidValue: /dev/null is a character device, not a regular file; allowed: a new path, or a regular file (or symlink, replaced itself, never its target) to replace
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        if not force:
            raise InvalidValue("force", f"{path} exists; give this to replace it")
        return
    kinds = {stat.S_ISDIR: "folder", stat.S_ISCHR: "character device", stat.S_ISBLK: "block device",
             stat.S_ISFIFO: "named pipe", stat.S_ISSOCK: "socket"}
    kind = next((name for test, name in kinds.items() if test(mode)), "special file")
    raise InvalidValue(field, f"{path} is a {kind}, not a regular file; allowed: a new path, or a regular "
                             "file (or symlink, replaced itself, never its target) to replace")


def _mode() -> int:
    """The mode the user's umask gives a new file (0644 under umask 022); mkstemp's own is 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def _signals_held():
    """SIGINT and SIGTERM are noted, not acted on, until the block ends; then the first is re-raised.

    Python runs its signal handlers in the main thread whichever thread the
    signal reaches (NumPy's BLAS threads do not block it), so the handlers
    themselves are swapped: a set of renames is never cut in two.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])


def write_all(files: dict[str, Callable[[BinaryIO], None]], field: str, force: bool = True) -> None:
    """Write every path through its writer, then rename them all into place; on any error, none.

    Each file goes to a temporary beside its target first; only when all are
    written are they renamed, with Ctrl-C and SIGTERM held for those few
    syscalls, so an interrupt leaves either the whole set or nothing new.
    A write that fails (disk full, EFBIG) is a one-line run-time error.
    """
    targets = {check_target(path, field, force): write for path, write in files.items()}
    temps: list[str] = []
    mode = _mode()
    try:
        for target, write in targets.items():
            with _signals_held():  # the temporary is listed for cleanup before an interrupt can land
                try:
                    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
                except OSError as error:
                    raise InvalidValue(field, f"cannot write in {str(target.parent)!r}: {error.strerror}") from None
                temps.append(temp)
            try:
                with os.fdopen(fd, "wb") as handle:
                    write(handle)
                    os.fchmod(handle.fileno(), mode)
            except OSError as error:
                raise UnrolledError(f"cannot write {target}: {error.strerror or error}; nothing was written") from None
        with _signals_held():
            for target in targets:  # again just before the renames: a path may have changed while we wrote
                check_replaceable(target, field, force)
            _rename_all(temps, list(targets))
            temps.clear()
    finally:
        for temp in temps:
            Path(temp).unlink(missing_ok=True)


def _rename_all(temps: list[str], targets: list[Path]) -> None:
    """Rename every temporary onto its target, or, if one rename fails, put every target back as it was."""
    backups: dict[Path, str] = {}
    done: list[Path] = []
    try:
        for target in targets:
            if target.is_symlink() or target.exists():
                backup = str(target.parent / f".{target.name}.old.{secrets.token_hex(8)}")
                os.rename(target, backup)
                backups[target] = backup
        for temp, target in zip(temps, targets):
            os.replace(temp, target)
            done.append(target)
    except OSError as error:
        for target in done:
            target.unlink(missing_ok=True)
        for target, backup in backups.items():
            os.replace(backup, target)
        raise UnrolledError(f"cannot write {target}: {error.strerror or error}; nothing was written") from None
    for backup in backups.values():
        Path(backup).unlink(missing_ok=True)


def write_atomic(path: str, field: str, write: Callable[[BinaryIO], None], force: bool = True) -> None:
    """Write one ``path`` through ``write(file)`` as ``write_all`` does."""
    write_all({path: write}, field, force)
