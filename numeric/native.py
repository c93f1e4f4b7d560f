"""BPTT as C generated from the symbolic cell, compiled with the system's C compiler.

The same derivations as the NumPy path (the step's quantities, then one fused
vector-Jacobian product a step) are printed as C with CSE, one loop over the
batch per time step.  gcc vectorises those loops, transcendental functions
included (glibc's libmvec, which needs -ffast-math), and OpenMP spreads them
over the cores.  Optional: it needs a C compiler (``$CC``, else gcc or cc);
without one this mode says so and the NumPy modes remain.
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

import numpy as np
import sympy as sp
from sympy.printing.c import ccode

from derive.cell import Cell
from derive.errors import UnrolledError
from derive.graph import expanded, jacobian_step

from .batch import Problem, loss_gradient, split
from .logmatrix import LogMatrix
from .kernels import adjoint_symbols, all_params

FLAGS = ["-O3", "-ffast-math", "-march=native", "-fopenmp", "-fPIC", "-shared"]
FUNCTIONS = {"sigmoid": "sigmoid_", "relu": "relu_", "Heaviside": "heaviside_"}
PRELUDE = """#include <math.h>
#include <stdlib.h>
static inline double sigmoid_(double a) { return 1.0 / (1.0 + exp(fmin(-a, 700.0))); }  /* one exp, vectorised; no inf */
static inline double relu_(double a) { return a > 0.0 ? a : 0.0; }
static inline double heaviside_(double a, double at_zero) { return a > 0.0 ? 1.0 : (a == 0.0 ? at_zero : 0.0); }
"""
#: A thread's buffer: (T + 1) × (S + Q) doubles for each of its block's settings.
BLOCK_BYTES = 1 << 22
#: Settings in a block: at most this many, fewer when T is long.
MAX_BLOCK = 1024


def compiler() -> str | None:
    """The C compiler to use, or None."""
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _code(exprs, names: dict, targets: list[str], indent: str, prefix: str = "c_") -> list[str]:
    """C statements computing ``exprs`` into ``targets``, sharing subexpressions (named ``prefix``0, …)."""
    subs, reduced = sp.cse([e.xreplace(names) for e in exprs], symbols=sp.numbered_symbols(prefix))
    lines = [f"{indent}const double {s} = {ccode(v, user_functions=FUNCTIONS)};" for s, v in subs]
    return lines + [f"{indent}{t} = {ccode(v, user_functions=FUNCTIONS)};" for t, v in zip(targets, reduced)]


def source(cell: Cell) -> str:
    """The C source of the batched BPTT of ``cell``.

    Each thread takes blocks of C settings; a block runs forward then backward
    through time in the thread's own buffer (small enough for its cache), with
    one vectorised loop over the block per step.  Arrays are element-major:
    theta[k * N + b], and in the buffer [(t * W + k) * C + j].
    """
    S, M = len(cell.states) * cell.n, cell.m
    theta = [s for _, v in cell.params for s in v]
    quantities = list(expanded(cell))
    P, Q, W = len(theta), len(quantities), S + len(quantities)
    adjoint = adjoint_symbols(cell)
    names = {s: sp.Symbol(f"s{i}") for i, s in enumerate(cell.state_prev())}
    names.update({s: sp.Symbol(f"x{j}") for j, s in enumerate(cell.x)})
    names.update({s: sp.Symbol(f"p{i}") for i, s in enumerate(theta)})
    names.update({s: sp.Symbol(f"q{i}") for i, s in enumerate(quantities)})
    names.update({s: sp.Symbol(f"a{i}") for i, s in enumerate(adjoint)})
    index = [quantities.index(s) for s in cell.state_next()]
    vjp = [sp.factor_terms(e) for e in (*(adjoint * jacobian_step(cell)), *(adjoint * all_params(cell)))]
    # Row r of ∂s_T/∂s_t, carried backwards beside the loss's adjoint: the same VJP with the
    # row in place of the adjoint, renormalised each step (its scale kept as log10).
    row_vjp = [sp.factor_terms(e) for e in adjoint * jacobian_step(cell)]
    row_code = []
    for r in range(S):
        rows = {**names, **{a: sp.Symbol(f"r{r}_{i}") for i, a in enumerate(adjoint)}}
        row_code += [f"{'    ' * 5}const double r{r}_{i} = jr[{r * S + i} * C + j];" for i in range(S)]
        row_code += _code(row_vjp, rows, [f"double u{r}_{i}" for i in range(S)], "    " * 5, f"k{r}_")
    peak = " ".join(f"peak = fmax(peak, fabs(u{r}_{i}));" for r in range(S) for i in range(S))
    pad = "                "
    load_p = [f"{pad}const double p{i} = theta[{i} * N + start + j];" for i in range(P)]
    load_s = [f"{pad}const double s{i} = now[{i} * C + j];" for i in range(S)]
    load_x = [f"            const double x{j} = x[t * {M} + {j}];" for j in range(M)]
    return "\n".join([
        PRELUDE,
        "/* Returns 0, or 1 when a thread's buffers could not be allocated (nothing is then valid). */",
        "int bptt(long N, long T, long C, const double *restrict theta, const double *restrict x,",
        "         const double *restrict s0, const double *restrict dl, long first, int every,",
        "         double *restrict out, int want_jacobian, double *restrict jac, double *restrict jac_scale) {",
        "    int failed = 0;",
        "    #pragma omp parallel reduction(|:failed)",
        "    {",
        f"        double *restrict buf = malloc(sizeof(double) * (T + 1) * {W} * C);",
        f"        double *restrict adj = malloc(sizeof(double) * {max(S, 1)} * C);",
        f"        double *restrict jr = malloc(sizeof(double) * {max(S * S, 1)} * C);",
        "        double *restrict js = malloc(sizeof(double) * C);",
        "        if (!buf || !adj || !jr || !js) failed = 1;",
        "        #pragma omp for schedule(static)",
        "        for (long start = 0; start < N; start += C) {",
        "        if (!buf || !adj || !jr || !js) continue;",
        "        const long n = N - start < C ? N - start : C;",
        "        #pragma omp simd",
        "        for (long j = 0; j < n; j++) {",
        *(f"            buf[{i} * C + j] = s0[{i} * N + start + j];" for i in range(S)),
        *(f"            adj[{i} * C + j] = dl[{i}];" for i in range(S)),
        *(f"            out[{i} * N + start + j] = 0.0;" for i in range(P)),
        *(f"            jr[{r * S + i} * C + j] = {1.0 if r == i else 0.0};" for r in range(S) for i in range(S)),
        "            js[j] = 0.0;",
        "        }",
        "        for (long t = 0; t < T; t++) {",
        f"            const double *restrict now = buf + t * {W} * C;",
        f"            double *restrict next = buf + (t + 1) * {W} * C;",
        *load_x,
        "            #pragma omp simd",
        "            for (long j = 0; j < n; j++) {",
        *load_p, *load_s,
        *(f"{pad}double q{i};" for i in range(Q)),
        *_code([expanded(cell)[q] for q in quantities], names, [f"q{i}" for i in range(Q)], pad),
        *(f"{pad}next[{S + i} * C + j] = q{i};" for i in range(Q)),
        *(f"{pad}next[{i} * C + j] = q{k};" for i, k in enumerate(index)),
        "            }",
        "        }",
        "        for (long t = T - 1; t >= first - 1; t--) {",
        f"            const double *restrict now = buf + t * {W} * C;",
        f"            const double *restrict next = buf + (t + 1) * {W} * C;",
        *load_x,
        # hoisted out of the loop: a load under a condition inside it stops gcc vectorising
        "            const int carry = every && t > 0;",
        *(f"            const double carry{i} = carry ? dl[{i}] : 0.0;" for i in range(S)),
        "            #pragma omp simd",
        "            for (long j = 0; j < n; j++) {",
        *load_p, *load_s,
        *(f"{pad}const double q{i} = next[{S + i} * C + j];" for i in range(Q)),
        *(f"{pad}const double a{i} = adj[{i} * C + j];" for i in range(S)),
        *(f"{pad}double n{i};" for i in range(S)),
        *(f"{pad}double d{i};" for i in range(P)),
        *_code(vjp, names, [f"n{i}" for i in range(S)] + [f"d{i}" for i in range(P)], pad),
        *(f"{pad}out[{i} * N + start + j] += d{i};" for i in range(P)),
        *(f"{pad}adj[{i} * C + j] = n{i} + carry{i};" for i in range(S)),
        "            }",
        "            if (want_jacobian) {",
        "                #pragma omp simd",
        "                for (long j = 0; j < n; j++) {",
        *load_p, *load_s,
        *(f"{pad}const double q{i} = next[{S + i} * C + j];" for i in range(Q)),
        *row_code,
        f"{pad}double peak = 0.0; {peak}",
        f"{pad}const double scale = peak > 0.0 ? peak : 1.0;",
        f"{pad}js[j] += log10(scale);",
        *(f"{pad}jr[{r * S + i} * C + j] = u{r}_{i} / scale;" for r in range(S) for i in range(S)),
        "                }",
        "            }",
        "        }",
        "        if (want_jacobian) {",
        "            for (long j = 0; j < n; j++) {",
        *(f"                jac[{k} * N + start + j] = jr[{k} * C + j];" for k in range(S * S)),
        "                jac_scale[start + j] = js[j];",
        "            }",
        "        }",
        "        }",
        "        free(buf);",
        "        free(adj);",
        "        free(jr);",
        "        free(js);",
        "    }",
        "    return failed;",
        "}",
    ])


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


def library_name(text: str, cc: str) -> str:
    """The cached library's file name: a hash of the source, the flags and the compiler."""
    key = "\n".join([text, " ".join(FLAGS), _compiler_identity(cc)])
    return f"bptt-{hashlib.sha256(key.encode()).hexdigest()[:32]}.so"


def _build(cc: str, text: str, folder: Path, library: Path) -> None:
    """Compile ``text`` to ``library``: source and output under unique names, renamed into place.

    Several processes may build the same library at once; each writes its own
    files, and the last rename wins with identical content.
    """
    fd, c_file = tempfile.mkstemp(prefix=".bptt-", suffix=".c", dir=folder)
    fd_so, temp = tempfile.mkstemp(prefix=".bptt-", suffix=".so", dir=folder)
    os.close(fd_so)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        result = subprocess.run([cc, *FLAGS, c_file, "-o", temp, "-lm"], capture_output=True, text=True)
        if result.returncode != 0:
            raise UnrolledError(f"compiling the native kernel failed: {result.stderr.strip().splitlines()[-1:]}")
        os.replace(temp, library)
    finally:
        for leftover in (c_file, temp):
            Path(leftover).unlink(missing_ok=True)


@cache
def compiled(cell: Cell):
    """The cell's BPTT as a C function, compiled once per source text and compiler.

    Libraries are cached in :func:`cache_folder`, named by a hash of the source,
    the flags and the compiler; only files there that this user owns and alone
    can write are loaded.
    """
    cc = compiler()
    if cc is None:
        raise UnrolledError("the native mode needs a C compiler (set CC, or install gcc); "
                            "the reverse mode needs none")
    text = source(cell)
    folder = private_folder(cache_folder())
    library = folder / library_name(text, cc)
    if not library.exists():
        _build(cc, text, folder, library)
    function = _load(library).bptt
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_long, *[ctypes.c_void_p] * 4, ctypes.c_long,
                         ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    return function


def _pointer(a: np.ndarray) -> int:
    return a.ctypes.data


def gradient_native(p: Problem, truncate: int | None = None, every_step: bool = False) -> dict:
    """∂L/∂θ exactly as ``numeric.unroll.gradient_reverse`` defines it, by the compiled C loop."""
    return native_pass(p, truncate, every_step)[0]


def native_pass(p: Problem, truncate: int | None = None, every_step: bool = False,
                jacobian: bool = False) -> tuple[dict, LogMatrix | None]:
    """(∂L/∂θ, and with ``jacobian`` ∂s_T/∂s_0 in the log domain) in one compiled pass.

    The Jacobian product is carried backwards beside BPTT's adjoint, only when asked:
    on the grid it is most of the work.
    """
    if p.inputs.ndim != 2 or np.iscomplexobj(p.inputs) or any(np.iscomplexobj(v) for v in p.params.values()):
        raise ValueError("the native mode takes real inputs shared by the batch, shape (T, m)")
    if truncate is not None and every_step:
        raise ValueError("truncation is defined here for the loss on the last step only")
    if jacobian and truncate is not None and truncate < p.steps:
        raise ValueError("∂s_T/∂s_0 runs through every step; truncated BPTT stops early")
    function = compiled(p.cell)
    shape = p.batch_shape
    total = int(np.prod(shape, dtype=np.int64))
    theta = np.ascontiguousarray(np.stack([np.broadcast_to(v, shape).reshape(total) for v in p.theta()])
                                 if p.theta() else np.zeros((0, total)), dtype=float)
    s0 = np.ascontiguousarray(np.broadcast_to(p.s0, shape + p.s0.shape[-1:]).reshape(total, -1).T, dtype=float)
    x = np.ascontiguousarray(p.inputs, dtype=float)
    dl = np.ascontiguousarray(loss_gradient(p))
    S = s0.shape[0]
    width = S + len(expanded(p.cell))
    first = 1 if truncate is None else max(1, p.steps - truncate + 1)
    block = int(max(8, min(MAX_BLOCK, BLOCK_BYTES // ((p.steps + 1) * width * 8))))
    out = np.empty((theta.shape[0], total))
    jac = np.empty((S * S, total) if jacobian else (1,))
    jac_scale = np.empty(total if jacobian else 1)
    failed = function(total, p.steps, block, _pointer(theta), _pointer(x), _pointer(s0), _pointer(dl), first,
                      int(every_step), _pointer(out), int(jacobian), _pointer(jac), _pointer(jac_scale))
    if failed:
        raise UnrolledError(f"the native mode could not allocate its buffers ({p.steps + 1} steps × {width} "
                            f"values × {block} settings a thread); fewer steps, or the forward mode, which stores none")
    grads = split(p, out.T.reshape(shape + (theta.shape[0],)))
    if not jacobian:
        return grads, None
    return grads, LogMatrix(jac.T.reshape(shape + (S, S)), jac_scale.reshape(shape))
