"""Worker processes for independent work: a sweep's runs, the report's checks beside its figures.

Workers are spawned (a fresh interpreter, nothing inherited but the arguments)
and load NumPy with one BLAS thread each, so that they share the cores instead
of fighting over them.  They ignore Ctrl-C: the parent stops them, at once,
rather than waiting for work in flight.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
from contextlib import contextmanager
from typing import Callable, Iterator

from derive.errors import UnrolledError

BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Workers started inside read one BLAS thread from the environment; ours is restored after."""
    saved = {v: os.environ.get(v) for v in BLAS_THREADS}
    os.environ.update({v: "1" for v in BLAS_THREADS})
    try:
        yield
    finally:
        for v, value in saved.items():
            if value is None:
                os.environ.pop(v)
            else:
                os.environ[v] = value


@contextmanager
def pool(jobs: int) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of ``jobs`` spawned workers; closed and joined on success, terminated on any exception."""
    with _one_blas_thread():
        workers = multiprocessing.get_context("spawn").Pool(jobs, initializer=_ignore_interrupts)
    try:
        yield workers
        workers.close()
    except BaseException:
        workers.terminate()
        raise
    finally:
        workers.join()


def _run_and_send(send, function: Callable, args: tuple) -> None:
    _ignore_interrupts()
    try:
        outcome = (True, function(*args))
    except BaseException as error:  # sent back whole: the parent raises it as if it were its own
        outcome = (False, error)
    try:
        send.send(outcome)
    except Exception as error:  # a result or an exception that does not pickle
        send.send((False, UnrolledError(f"a worker's result could not be sent back: {error}")))


@contextmanager
def background(function: Callable, *args) -> Iterator[Callable[[], object]]:
    """``function(*args)`` in one spawned worker while the caller goes on.

    Yields ``result()``, which waits for the worker and returns its value or raises what it
    raised; a worker that dies without answering is an ``UnrolledError``, never a hang.  On the
    way out, whatever happened, a worker still running is stopped.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    with _one_blas_thread():
        worker = context.Process(target=_run_and_send, args=(send, function, args), daemon=True)
        worker.start()
    send.close()

    def result():
        try:
            ok, value = receive.recv()  # the end of the pipe (EOFError) when the worker dies first
        except EOFError:
            worker.join()
            raise UnrolledError(f"a worker process ended without an answer (exit code {worker.exitcode})") from None
        if not ok:
            raise value
        return value

    try:
        yield result
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()
        receive.close()
