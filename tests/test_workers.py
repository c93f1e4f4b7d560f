"""numeric.training.workers: a worker's value or error comes back whole, a dead worker is an error (not a
hang), and the parent's environment is left as it was."""

from __future__ import annotations

import os

import pytest

from derive.errors import InvalidValue, NonFinite, UnrolledError
from numeric.training import workers


def _blas_threads() -> str | None:
    return os.environ.get("OPENBLAS_NUM_THREADS")


def _refuse(field: str) -> None:  # what broke the report: an error whose __init__ takes two arguments
    raise InvalidValue(field, "must be from 1 to 4096, got 0")


def _overflow() -> None:
    raise NonFinite("h_2[0]", 2, "inf")


def _die() -> None:
    os._exit(3)


def test_a_value_comes_back_and_the_worker_has_one_blas_thread():
    before = _blas_threads()
    with workers.background(_blas_threads) as result:
        assert result() == "1"
    assert _blas_threads() == before


def test_a_workers_error_is_raised_in_the_parent_as_it_was():
    # (every UnrolledError pickles with its fields: derive/errors.py's doctest)
    with workers.background(_overflow) as result:
        with pytest.raises(NonFinite, match=r"h_2\[0\] is inf at step 2") as raised:
            result()
    assert raised.value.step == 2


def test_a_worker_that_dies_is_an_error_not_a_hang():
    with workers.background(_die) as result:
        with pytest.raises(UnrolledError, match=r"ended without an answer \(exit code 3\)"):
            result()


def test_a_pool_passes_errors_back_and_restores_the_environment():
    before = _blas_threads()
    with pytest.raises(InvalidValue, match="must be from 1 to 4096"):
        with workers.pool(1) as running:
            list(running.imap(_refuse, ["hidden", "batch"]))
    assert _blas_threads() == before
