"""A layer's elementwise stages as C: each stage's forward, VJP and x's cotangent, one loop over the
elements of a (B, n) block instead of one NumPy call per operation.

The expressions are the ones NumPy lambdifies (``stages.Kernels.definitions``), printed with the
C backend's printer (``codegen``: CSE, σ(a) = 1 / (1 + e^{−a}) with one exp) in float or double,
and compiled once per core and type into the kernel cache (``build``), on first use.  A kernel takes
the NumPy kernel's arguments and returns its arrays (as the rows of one array); an argument is a
per-step value (B, n), a parameter read by unit (1, n), or one value.  The kernel checks every
argument against that (type, dtype, shape, unit column stride) and, where one does not fit (a
pullback's rows of a Jacobian, a broadcast cotangent), the NumPy kernel runs instead.
``UNROLLED_KERNELS=numpy`` keeps NumPy's everywhere, as does a machine without a C compiler.

>>> from derive.cells import CELLS
>>> from derive.core import make_core
>>> text = source(make_core(CELLS["rnn"], activation="tanh"), "double")
>>> sorted({line.strip() for line in text.splitlines() if line.strip().startswith("o0[")})
['o0[b * n + j] = tanh(u0 + u1 + u2);', 'o0[b * n + j] = u4*(1 - pow(u3, 2));']
"""

from __future__ import annotations

import ctypes
import os
import warnings
from dataclasses import replace
from functools import cache
from typing import Callable

import numpy as np
import sympy as sp

from derive.core import Core
from derive.errors import UnrolledError

from .. import stages
from . import build
from .codegen import PAD, PRELUDE, REALS, _code
from .run import REALS as C_TYPES

#: Set to "numpy" to run NumPy's kernels even where a compiler is found (as without one).
SWITCH = "UNROLLED_KERNELS"
#: An argument's kind: a per-step value (B, n), a parameter read by unit (1, n), one value.
FULL, ROW, ONE = 0, 1, 2
INDEX = {FULL: "b * r{0} + j", ROW: "j", ONE: "0"}
#: Below this many units a kernel's inner loop runs over the batch.
NARROW = 8
#: The arguments arrive as CPython lays them out: a tuple of NumPy arrays (``PyTupleObject``: its items
#: after ``tuple.__basicsize__`` bytes), each array as NumPy's C API lays it out (``PyArrayObject_fields``,
#: the same in NumPy 1 and 2) after the object's header (``object.__basicsize__``).  Reading them in C
#: costs nothing; ctypes costs 0.06 µs an argument and asking NumPy for a pointer 0.8 µs (measured, an
#: LSTM VJP's 27 arrays: 23 µs a call through ``__array_interface__``, 2.5 µs as 27 objects, 0.5 µs as
#: one tuple).  ``_layout_holds`` checks both layouts against this Python and NumPy once.
LAYOUT = """#include <stddef.h>
#include <stdint.h>
typedef struct {{ char head[{head}]; const void *type; char *data; int nd; const ptrdiff_t *dims;
                 const ptrdiff_t *strides; const void *base; const void *descr; }} array;
#define TYPE(o) (*(const void *const *) ((const char *) (o) + {head}))
#define SIZE(t) (*(const ptrdiff_t *) ((const char *) (t) + {head} + sizeof(void *)))
#define ITEM(t, i) (((const array *const *) ((const char *) (t) + {items}))[i])
static const void *tuple_type, *ndarray, *real_descr;
void set_types(const void *tuple, const void *type, const void *descr) {{
    tuple_type = tuple; ndarray = type; real_descr = descr;
}}
/* What this file reads of the first item of a tuple, for the check against Python's own view of it:
   data, nd, dims[0..1], strides[0..1], and whether type and descr are ndarray's and real's. */
void probe(const void *t, ptrdiff_t *out) {{
    const array *a = ITEM(t, 0);
    out[0] = (ptrdiff_t) a->data; out[1] = a->nd; out[2] = a->dims[0]; out[3] = a->dims[1];
    out[4] = a->strides[0]; out[5] = a->strides[1]; out[6] = a->type == ndarray; out[7] = a->descr == real_descr;
    out[8] = TYPE(t) == tuple_type; out[9] = SIZE(t);
}}
/* Whether a is an ndarray of real shaped (B, n) (kind 0), (1, n) (kind 1) or of one value (kind 2),
   its units adjacent and its rows a whole number of reals apart. */
static int fits(const array *a, ptrdiff_t B, ptrdiff_t n, int kind) {{
    if (a->type != ndarray || a->descr != real_descr || (uintptr_t) a->data % sizeof(real)) return 0;
    if (kind == 2) {{
        for (int k = 0; k < a->nd; k++) if (a->dims[k] != 1) return 0;
        return 1;
    }}
    if (a->nd != 2 || a->dims[0] != (kind == 0 ? B : 1) || a->dims[1] != n) return 0;
    return (n == 1 || a->strides[1] == (ptrdiff_t) sizeof(real))
        && (a->dims[0] == 1 || a->strides[0] % (ptrdiff_t) sizeof(real) == 0);
}}
/* Whether out is a C-contiguous ndarray of real shaped (k, B, n): the outputs, one after another. */
static int block(const array *out, ptrdiff_t k, ptrdiff_t B, ptrdiff_t n) {{
    return out->type == ndarray && out->descr == real_descr && (uintptr_t) out->data % sizeof(real) == 0 && out->nd == 3 && out->dims[0] == k
        && out->dims[1] == B && out->dims[2] == n && out->strides[2] == (ptrdiff_t) sizeof(real)
        && out->strides[1] == n * out->strides[2] && out->strides[0] == B * out->strides[1];
}}
"""


def kinds(core: Core, args) -> tuple[int, ...]:
    """Each argument's kind: a parameter with a row per unit is ROW, one of a single value ONE, any
    other symbol (a state, a product, a quantity, a cotangent) a per-step value, FULL."""
    rows = {name: r for name, r, _ in core.param_table()}
    of = {sym: ROW if rows[name] == "n" else ONE for name, sym in core.params}
    return tuple(of.get(sym, FULL) for sym in args)


def function(name: str, args, exprs, kind: tuple[int, ...], real: str) -> list[str]:
    """int name(ptrdiff_t B, ptrdiff_t n, args, out): ``exprs`` of ``args`` (a tuple of arrays) at every element of a
    (B, n) block, written to out (len(exprs), B, n).  Returns 0, or 1 + the first argument that does not
    fit (len(args) + 1: out; −1: a tuple of another length)."""
    used = set().union(*(e.free_symbols for e in exprs))
    lines = [f"int {name}(ptrdiff_t B, ptrdiff_t n, const void *args, const array *out) {{",
             f"    if (TYPE(args) != tuple_type || SIZE(args) != {len(args)}) return -1;"]
    for i, k in enumerate(kind):
        lines += [f"    const array *a{i} = ITEM(args, {i});", f"    if (!fits(a{i}, B, n, {k})) return {i + 1};",
                  f"    const real *restrict p{i} = (const real *) a{i}->data;"]
        if k == FULL:
            lines.append(f"    const ptrdiff_t r{i} = a{i}->strides[0] / (ptrdiff_t) sizeof(real);")
    lines.append(f"    if (!block(out, {len(exprs)}, B, n)) return {len(args) + 1};")
    lines += [f"    real *restrict o{i} = (real *) out->data + {i} * B * n;" for i in range(len(exprs))]
    loads = [f"{PAD}const real u{i} = p{i}[{INDEX[k].format(i)}];" for i, (sym, k) in enumerate(zip(args, kind))
             if sym in used]
    outputs = [f"o{i}[b * n + j] =" for i in range(len(exprs))]
    body = loads + _code(exprs, {sym: sp.Symbol(f"u{i}") for i, sym in enumerate(args)}, outputs, "e", real)
    return lines + [*_loops(body), "    return 0;", "}"]


def _loops(body: list[str]) -> list[str]:
    """``body`` at every (b, j): the units in the inner (vectorised) loop, or the batch where the units
    are fewer than a vector holds (n = 1: 64 scalar calls of tanh a step, 1.3 µs, measured)."""
    def nest(outer: str, inner: str) -> list[str]:
        return [f"        for (ptrdiff_t {outer}) {{", "            #pragma omp simd", f"            for (ptrdiff_t {inner}) {{",
                *body, "            }", "        }"]
    return [f"    if (n < {NARROW}) {{", *nest("j = 0; j < n; j++", "b = 0; b < B; b++"), "    } else {",
            *nest("b = 0; b < B; b++", "j = 0; j < n; j++"), "    }"]


def printed(core: Core, k: stages.Kernels) -> tuple[tuple[str, tuple, tuple, tuple[int, ...]], ...]:
    """(kernel, arguments, expressions, the arguments' kinds) of the stage's kernels C computes: those
    with an output and a per-step argument to size it by."""
    out = ((name, args, exprs, kinds(core, args)) for name, args, exprs in k.definitions)
    return tuple(kernel for kernel in out if kernel[2] and FULL in kernel[3])


@cache
def source(core: Core, real: str) -> str:
    """The C of every elementwise stage of ``core``: s{stage}_forward, s{stage}_vjp, s{stage}_x_vjp."""
    pointer = ctypes.sizeof(ctypes.c_void_p)
    lines = [PRELUDE.format(*REALS[real]),
             LAYOUT.format(head=object.__basicsize__ - pointer, items=tuple.__basicsize__)]
    for index, k in enumerate(stages.compile_stages(core)):
        for name, args, exprs, kind in printed(core, k):
            lines += function(f"s{index}_{name}", args, exprs, kind, real)
    return "\n".join(lines)


def _present(args: tuple, given: int, shape: tuple[int, int], dtype: np.dtype) -> tuple:
    """``args`` with each of its last ``given`` (cotangents) an array: 0.0 where none reached the
    quantity (``cot.get(q, 0.0)``), for C a zeros array."""
    cots = args[len(args) - given:]
    if all(type(c) is np.ndarray for c in cots):
        return args
    return args[:len(args) - given] + tuple(c if type(c) is np.ndarray else np.full(shape, c, dtype) for c in cots)


def wrapped(function, fallback: Callable, sized_by: int, outputs: int, given: int, dtype: np.dtype) -> Callable:
    """``fallback``'s twin: the same arguments, its arrays back (as one (outputs, B, n) array, whose
    rows are the outputs, (B, n) as argument ``sized_by`` is), computed by ``function``.  The last
    ``given`` arguments are cotangents, which may be 0.0."""
    def run(*args):
        shape = args[sized_by].shape
        if len(shape) != 2:
            return fallback(*args)
        out = np.empty((outputs, *shape), dtype)
        failed = function(shape[0], shape[1], _present(args, given, shape, dtype) if given else args, out)
        return fallback(*args) if failed else out
    return run


def _stage(library, index: int, core: Core, k: stages.Kernels, dtype: np.dtype) -> stages.Kernels:
    """The stage's kernels with C in place of NumPy's where C computes them."""
    swapped = {}
    for name, args, exprs, kind in printed(core, k):
        c = getattr(library, f"s{index}_{name}")
        # The tuple of arrays itself, a PyObject *, and the outputs' array: ctypes holds both during the call.
        c.restype, c.argtypes = ctypes.c_int, [ctypes.c_ssize_t, ctypes.c_ssize_t, ctypes.py_object, ctypes.py_object]
        given = len(k.received) if name != "forward" else 0
        # Sized by its first per-step argument, which must be an array: never a cotangent (may be 0.0).
        assert kind.index(FULL) < len(args) - given, (core.name, name)
        swapped[name] = wrapped(c, getattr(k, name), kind.index(FULL), len(exprs), given, dtype)
    return replace(k, **swapped)


def _layout_holds(library, dtype: np.dtype) -> bool:
    """Whether the compiled layouts read this Python's tuples and NumPy's arrays where they are: every
    field C reads, of a strided view (whose data, shape and strides differ from any default)."""
    library.set_types.argtypes = [ctypes.c_void_p] * 3
    library.set_types(id(tuple), id(np.ndarray), id(dtype))
    library.probe.argtypes = [ctypes.py_object, ctypes.c_void_p]
    view = np.zeros((5, 7), dtype)[1::2, 2:]
    seen = np.zeros(10, np.intp)
    library.probe((view,), seen.ctypes.data)
    want = [view.__array_interface__["data"][0], view.ndim, *view.shape, *view.strides, 1, 1, 1, 1]
    return seen.tolist() == want


@cache
def _compiled(core: Core, dtype: np.dtype) -> stages.Plan | None:
    try:
        library = build.library(source(core, C_TYPES[dtype]))
    except UnrolledError as error:
        warnings.warn(f"the NumPy kernels run instead of C for {core.name}: {error}", RuntimeWarning)
        return None
    if not _layout_holds(library, dtype):
        warnings.warn(f"the NumPy kernels run instead of C for {core.name}: this Python's or NumPy's object "
                      "layout is not the one the kernels read", RuntimeWarning)
        return None
    base = stages.plan(core)
    kernels = tuple(_stage(library, index, core, k, dtype) for index, k in enumerate(base.kernels))
    return replace(base, kernels=kernels, backwards=kernels[::-1])


def fused_plan(core: Core, dtype: np.dtype) -> stages.Plan | None:
    """``stages.plan(core)`` with its elementwise kernels in C for a layer computed in ``dtype``
    (float32 or float64), compiled on first use; None where NumPy's run: no C compiler,
    ``UNROLLED_KERNELS=numpy``, another dtype (the complex step), or a compiler that failed."""
    if os.environ.get(SWITCH) == "numpy" or dtype not in C_TYPES or build.compiler() is None:
        return None
    return _compiled(core, dtype)
