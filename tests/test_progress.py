"""Progress: a status line on a terminal (stderr), nothing on a pipe; the result on stdout either way."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], tty: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``python cli.py args``, stderr a terminal when ``tty``."""
    if not tty:
        p = subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
        return p.returncode, p.stdout, p.stderr
    leader, follower = pty.openpty()
    p = subprocess.Popen([sys.executable, "cli.py", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    err = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read().decode()
    p.wait(timeout=300)
    os.close(leader)
    return p.returncode, out, err.decode(errors="replace")


CASES = {
    "derive": (["derive", "--steps", "50"], "the numbers over T = 50"),
    "numeric": (["numeric", "--cell", "lstm", "--hidden", "8", "--batch", "2", "--steps", "20"], "unrolling 20 steps"),
    "numeric grid": (["numeric", "--grid", "W_hh=0:1:3", "--steps", "5"], "5 steps for 3 settings"),
    "report": (["report", "--out", "{tmp}", "--only", "explode", "--format", "png"], "computing explode"),
}


@pytest.mark.parametrize("name", CASES)
def test_a_terminal_sees_what_a_run_is_doing_and_a_pipe_does_not(name, tmp_path):
    template, doing = CASES[name]
    code, out, err = _run([a.format(tmp=tmp_path / "a") for a in template], tty=True)
    assert code == 0 and doing in err and err.endswith("\r\x1b[K"), err  # the line is cleared at the end
    assert out.strip()
    code, out_piped, err_piped = _run([a.format(tmp=tmp_path / "b") for a in template], tty=False)
    assert code == 0 and err_piped == "" and out_piped.replace(str(tmp_path / "b"), "") == out.replace(
        str(tmp_path / "a"), "")
