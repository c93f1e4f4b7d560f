"""Compiling generated C: the compiler, a private cache of libraries, and loading them safely.

A library is named by a hash of its source, the flags and the compiler, and lives in the
user's own cache folder; only a regular file there that this user owns and alone can write
is loaded, since loading a library runs its code.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from derive.errors import UnrolledError

#: -ffast-math lets gcc call glibc's vectorised exp and tanh (libmvec) inside the simd loops.
FLAGS = ["-O3", "-ffast-math", "-march=native", "-fopenmp", "-fPIC"]
#: Linking is a step of its own, without -ffast-math: linked with it, gcc 12 adds crtfastmath.o, whose
#: constructor sets flush-to-zero for the whole process when the library loads (Python's and NumPy's
#: subnormals, 1e-310, then read 0 from the first layer on).
LINK = ["-shared", "-fopenmp"]
#: gcc's instruction combiner is quadratic on long straight-line code: at most 2 instructions
#: at a time, LSTM n = 16 compiles in 44 s instead of 150 s (gcc 12), and n <= 8 runs as fast.
GCC_FLAGS = ["--param=max-combine-insns=2"]


def compiler() -> str | None:
    """The C compiler to use (``$CC``, else gcc, else cc), or None."""
    return _found(os.environ.get("CC"), os.environ.get("PATH"))


@cache
def _found(cc: str | None, path: str | None) -> str | None:
    # Looked up once per $CC and $PATH: every layer asks (``fused``), and a search of PATH takes 45 µs.
    for name in (cc, "gcc", "cc"):
        found = shutil.which(name, path=path) if name else None
        if found:
            return found
    return None


def cache_folder() -> Path:
    """Where compiled kernels live: the user's own cache folder, ``unrolled/native`` in it.

    ``$XDG_CACHE_HOME`` (else ``~/.cache``) on Linux, ``~/Library/Caches`` on macOS,
    ``%LOCALAPPDATA%`` on Windows.  Never a shared folder such as /tmp: a library
    found there could have been put there by anyone.
    """
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "unrolled" / "native"


def _owner() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def private_folder(folder: Path) -> Path:
    """``folder``, created mode 0700 if missing, after checking that only this user can write in it.

    A folder someone else owns, a symlink, or one that others may write in is
    refused: any library in it could have been planted.  One that is ours and
    merely readable by others is narrowed to 0700.
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError as error:
        raise UnrolledError(f"cannot make the kernel cache {folder}: {error.strerror} "
                            "(set XDG_CACHE_HOME to a folder of yours)") from None
    me = _owner()
    if not stat.S_ISDIR(info.st_mode):
        raise UnrolledError(f"refusing the kernel cache {folder}: it is not a folder (a symlink?)")
    if me is not None and info.st_uid != me:
        raise UnrolledError(f"refusing the kernel cache {folder}: it belongs to uid {info.st_uid}, not to you "
                            f"(uid {me})")
    if me is not None and info.st_mode & 0o022:
        raise UnrolledError(f"refusing the kernel cache {folder}: others may write in it (mode "
                            f"{stat.S_IMODE(info.st_mode):04o}); remove it, or chmod 700 it if you trust "
                            "what is inside")
    if me is not None and info.st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def _load(library: Path) -> ctypes.CDLL:
    """Load ``library`` after checking it is a regular file of this user that only they can write.

    Its folder has passed :func:`private_folder`, so nobody else can swap the
    file between this check and the load.
    """
    try:
        info = library.lstat()
    except OSError as error:
        raise UnrolledError(f"refusing to load {library}: {error.strerror}") from None
    me = _owner()
    if not stat.S_ISREG(info.st_mode) or (me is not None and (info.st_uid != me or info.st_mode & 0o022)):
        raise UnrolledError(f"refusing to load {library}: not a regular file that only you can write "
                            f"(uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}); remove it")
    return ctypes.CDLL(str(library))


@cache
def _compiler_identity(cc: str) -> str:
    """The compiler's path and first line of ``--version``: a new compiler means new libraries."""
    result = subprocess.run([cc, "--version"], capture_output=True, text=True)
    return f"{cc} {(result.stdout.splitlines() or [''])[0]}"


def flags(cc: str) -> list[str]:
    """The compiler's flags: ``FLAGS``, and ``GCC_FLAGS`` for gcc (clang has no such parameter)."""
    return FLAGS + ([] if "clang" in _compiler_identity(cc) else GCC_FLAGS)


def library_name(text: str, cc: str) -> str:
    """The cached library's file name: a hash of the source, the flags and the compiler."""
    key = "\n".join([text, " ".join(flags(cc)), " ".join(LINK), _compiler_identity(cc)])
    return f"bptt-{hashlib.sha256(key.encode()).hexdigest()[:32]}.so"


def _build(cc: str, text: str, folder: Path, library: Path) -> None:
    """Compile ``text`` to ``library``: source and output under unique names, renamed into place.

    Several processes may build the same library at once; each writes its own
    files, and the last rename wins with identical content.
    """
    fd, c_file = tempfile.mkstemp(prefix=".bptt-", suffix=".c", dir=folder)
    made = [tempfile.mkstemp(prefix=".bptt-", suffix=suffix, dir=folder) for suffix in (".o", ".so")]
    for descriptor, _ in made:
        os.close(descriptor)
    o_file, temp = (name for _, name in made)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        for step in ([*flags(cc), "-c", c_file, "-o", o_file], [*LINK, o_file, "-o", temp, "-lm"]):
            result = subprocess.run([cc, *step], capture_output=True, text=True)
            if result.returncode != 0:
                raise UnrolledError(f"compiling the native kernel failed: {result.stderr.strip().splitlines()[-1:]}")
        os.replace(temp, library)
    finally:
        for leftover in (c_file, o_file, temp):
            Path(leftover).unlink(missing_ok=True)


def library(text: str) -> ctypes.CDLL:
    """The C source ``text`` compiled to a library (once per text and compiler: the cache) and loaded."""
    cc = compiler()
    if cc is None:
        raise UnrolledError("the native backend needs a C compiler (set CC, or install gcc); "
                            "the NumPy backend needs none")
    folder = private_folder(cache_folder())
    path = folder / library_name(text, cc)
    if not path.exists():
        _build(cc, text, folder, path)
    return _load(path)


@cache
def compiled(text: str):
    """The function ``bptt`` of the C source ``text``, compiled once per text and compiler.

    Its signature is ``codegen.SIGNATURE``'s: int bptt(long N, long T, long C, theta,
    shared, x, s0, long first, int every, out), every array a pointer.
    """
    function = library(text).bptt
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_long, *[ctypes.c_void_p] * 4,
                         ctypes.c_long, ctypes.c_int, ctypes.c_void_p]
    return function
