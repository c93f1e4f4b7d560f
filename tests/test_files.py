"""Writing outputs: the whole set or nothing, the user's umask, and interrupts that clean up."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from numeric.io.files import write_all

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        result = runner.invoke(app, ["numeric", "--steps", "3", "--out", str(tmp_path / "a.npz")])
        write_all({str(tmp_path / "b.json"): lambda f: f.write(b"{}")}, "out")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"a.npz": mode, "b.json": mode}


def test_a_failing_writer_leaves_none_of_the_set(tmp_path):
    (tmp_path / "keep.txt").write_text("old")

    def broken(handle):
        handle.write(b"partial")
        raise OSError(27, "File too large")

    with pytest.raises(Exception, match="cannot write .*File too large; nothing was written"):
        write_all({str(tmp_path / "first.png"): lambda f: f.write(b"png"), str(tmp_path / "second.pdf"): broken,
                   str(tmp_path / "keep.txt"): lambda f: f.write(b"new")}, "out", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert (tmp_path / "keep.txt").read_text() == "old"


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the write fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "cli.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_a_write_that_fails_part_way_is_one_line_and_leaves_nothing(tmp_path):
    """EFBIG (a file-size limit) while writing the report: exit 1, one line, no file of the set."""
    out = tmp_path / "r"
    p = _cli("report", "--out", str(out), "--only", "explode", "--only", "lecture", "--dpi", "50",
             preexec_fn=_limit_file_size)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    assert err.count("\n") == 1 and "cannot write" in err and "nothing was written" in err, err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("sig,code,line", [(signal.SIGTERM, 143, "Terminated."), (signal.SIGINT, 130, "Aborted.")])
def test_an_interrupted_report_leaves_nothing_and_says_so(tmp_path, sig, code, line):
    """Interrupted while computing (usually) or while writing (on a loaded machine): the folder holds
    nothing, or the whole set when the signal came during the held renames; never a part, never a
    temporary."""
    out = tmp_path / "r"
    # three figures of about a second each: the signal lands well inside the work on any machine
    p = _cli("report", "--out", str(out), "--only", "cliff", "--only", "heatmap", "--only", "sources")
    deadline = time.monotonic() + 30
    while not _catches(p.pid, signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(2.0)  # imports done, figures being computed
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert (p.returncode, err) == (code, line + "\n"), f"exit {p.returncode}: {err}"  # the whole message, if it flakes
    left = sorted(q.name for q in out.iterdir()) if out.exists() else []
    assert left in ([], ["cliff.png", "heatmap.png", "sources.png", "unrolled-report.pdf"]), left


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (Linux: SigCgt in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc to time the signal")
def test_ctrl_c_during_imports_is_one_line_not_a_traceback():
    """Ctrl-C right after cli.py's first lines run (they catch SIGTERM, Python never does), while
    typer and sympy are still importing: one line, exit 130."""
    p = _cli("derive")
    deadline = time.monotonic() + 30
    while not _catches(p.pid, signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.001)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err == "Aborted.\n", err
