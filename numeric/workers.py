"""Worker processes for independent work: a sweep's runs, the report's checks beside its figures.

Workers are spawned (a fresh interpreter, nothing inherited but the arguments)
and load NumPy with one BLAS thread each, so that they share the cores instead
of fighting over them.  They ignore Ctrl-C: the parent stops them, at once,
rather than waiting for work in flight.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from contextlib import contextmanager
from typing import Iterator

BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def pool(jobs: int) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of ``jobs`` spawned workers; closed and joined on success, terminated on any exception."""
    saved = {v: os.environ.get(v) for v in BLAS_THREADS}
    os.environ.update({v: "1" for v in BLAS_THREADS})  # read by the workers as they start
    try:
        workers = multiprocessing.get_context("spawn").Pool(jobs, initializer=_ignore_interrupts)
    finally:
        for v, value in saved.items():
            if value is None:
                os.environ.pop(v)
            else:
                os.environ[v] = value
    try:
        yield workers
        workers.close()
    except BaseException:
        workers.terminate()
        raise
    finally:
        workers.join()
