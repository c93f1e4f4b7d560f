"""The native kernels' cache: private to the user, nothing planted is loaded, safe under concurrency."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from derive.cells import CELLS
from derive.core import make_core
from derive.errors import UnrolledError
from numeric.engine import native

pytestmark = pytest.mark.skipif(native.compiler() is None, reason="no C compiler")

PLANTED = """
#include <stdio.h>
__attribute__((constructor)) static void planted(void) { FILE *f = fopen("%s", "w"); if (f) fclose(f); }
void bptt(void) {}
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache, and no kernel compiled in this process yet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    native.compiled.cache_clear()
    yield tmp_path / "cache" / "unrolled" / "native"
    native.compiled.cache_clear()


@pytest.fixture(scope="module")
def text():
    """The C source of a kernel: the tanh RNN's BPTT at one unit."""
    return native.source(make_core(CELLS["rnn"], activation="tanh"), 1, 1)


def plant(cache: Path, text: str, marker: Path) -> Path:
    """A library at the very name the kernel would have, which leaves ``marker`` when loaded."""
    cache.mkdir(parents=True, exist_ok=True)
    c_file = cache.parent / "planted.c"
    c_file.write_text(PLANTED % marker)
    library = cache / native.library_name(text, native.compiler())
    subprocess.run([native.compiler(), "-shared", "-fPIC", str(c_file), "-o", str(library)], check=True)
    return library


def test_cache_is_the_users_own_folder(cache, text, monkeypatch):
    native.compiled(text)
    assert cache.is_dir() and (cache.stat().st_mode & 0o777) == 0o700
    assert [p.suffix for p in cache.iterdir()] == [".so"]  # no source or temporary left beside it
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert native.cache_folder().is_relative_to(Path.home())
    assert not native.cache_folder().is_relative_to(Path("/tmp"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give a file away")
def test_a_library_owned_by_someone_else_is_refused(cache, text, tmp_path):
    marker = tmp_path / "ran"
    library = plant(cache, text, marker)
    os.chown(library, 65534, 65534)
    with pytest.raises(UnrolledError, match="refusing to load"):
        native.compiled(text)
    assert not marker.exists()


@pytest.mark.parametrize("opened,message", [("library", "refusing to load"), ("folder", "others may write")])
def test_what_others_may_write_is_refused(cache, text, tmp_path, opened, message):
    marker = tmp_path / "ran"
    library = plant(cache, text, marker)
    (library if opened == "library" else cache).chmod(0o777)
    with pytest.raises(UnrolledError, match=message):
        native.compiled(text)
    assert not marker.exists()


def test_a_symlinked_library_or_folder_is_refused(cache, text, tmp_path):
    marker = tmp_path / "ran"
    elsewhere = plant(tmp_path / "elsewhere", text, marker)
    cache.mkdir(parents=True, mode=0o700)
    (cache / elsewhere.name).symlink_to(elsewhere)
    with pytest.raises(UnrolledError, match="refusing to load"):
        native.compiled(text)
    (cache / elsewhere.name).unlink()
    cache.rmdir()
    cache.symlink_to(elsewhere.parent)
    with pytest.raises(UnrolledError, match="not a folder"):
        native.compiled(text)
    assert not marker.exists()


def test_first_use_by_eight_processes_at_once(cache):
    script = ("from derive.cells import CELLS; from derive.core import make_core; from numeric.engine import native; "
              "native.compiled(native.source(make_core(CELLS['gru'], 'standard'), 1, 1))")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache.parent.parent)}
    runs = [subprocess.Popen([sys.executable, "-c", script], env=env, cwd=Path(__file__).parent.parent,
                             stderr=subprocess.PIPE, text=True) for _ in range(8)]
    errors = [run.communicate()[1] for run in runs]
    assert [run.returncode for run in runs] == [0] * 8, errors
    assert len([p for p in cache.iterdir()]) == 1
