"""The report: pages, image sizes, byte-identical output, atomic writes, --only and --force."""

from __future__ import annotations

import json

import struct

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

import reports.build
from cli import app
from derive.errors import UnrolledError
from numeric.check import default_cases
from reports.build import NAMES, PDF_NAME

runner = CliRunner()

SIZES = {name: (800, 500) for name in NAMES} | {"lecture": (800, 900), "sources": (1000, 480), "longterm": (1000, 480),
                                                   "memory": (1000, 480), "unrolled": (1000, 460)}


def png_size(path) -> tuple[int, int]:
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    folders = [tmp_path_factory.mktemp(f"run{i}") for i in range(2)]
    for folder in folders:
        result = runner.invoke(app, ["report", "--out", str(folder)])
        assert result.exit_code == 0, result.output
    return folders


def test_pdf_has_title_equations_figures_and_checks(full_report):
    reader = PdfReader(full_report[0] / PDF_NAME)
    derived = len(reports.build.derived_pages(50))
    assert len(reader.pages) == 2 + derived + len(NAMES) + 1
    checks = reader.pages[-1].extract_text()
    assert "Numeric checks" in checks
    # every case of `python cli.py check` on a line of its own, each within every tolerance
    cases = [line for line in checks.splitlines() if line.rstrip().endswith((" yes", " NO"))]
    assert len(cases) == len(default_cases()) and all(line.rstrip().endswith(" yes") for line in cases), checks
    assert "Derived: one step and its Jacobian" in reader.pages[2].extract_text()


def test_every_png_has_its_size(full_report):
    for name in NAMES:
        assert png_size(full_report[0] / f"{name}.png") == SIZES[name], name


def test_two_runs_are_byte_identical(full_report):
    first, second = full_report
    for path in sorted(first.iterdir()):
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name


def test_only_and_format(tmp_path):
    result = runner.invoke(app, ["report", "--out", str(tmp_path), "--only", "explode", "--only", "clipping", "--dpi", "50"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clipping.png", "explode.png", PDF_NAME]
    assert len(PdfReader(tmp_path / PDF_NAME).pages) == 2 + len(reports.build.derived_pages(50)) + 2
    assert png_size(tmp_path / "explode.png") == (400, 250)
    png_only = tmp_path / "png"
    png_only.mkdir()
    result = runner.invoke(app, ["report", "--out", str(png_only), "--only", "carousel", "--format", "png"])
    assert result.exit_code == 0 and [p.name for p in png_only.iterdir()] == ["carousel.png"]


def test_force(tmp_path):
    args = ["report", "--out", str(tmp_path), "--only", "clipping", "--format", "png"]
    assert runner.invoke(app, args).exit_code == 0
    before = (tmp_path / "clipping.png").stat().st_mtime_ns
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--force" in refused.output
    assert (tmp_path / "clipping.png").stat().st_mtime_ns == before
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_leaves_nothing(tmp_path, monkeypatch, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(reports.build, "_pdf", fail)
    with pytest.raises(type(error)):
        reports.build.build(str(tmp_path), only=("explode",))
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_no_temporary(tmp_path, monkeypatch):
    import numeric.io.files

    real = numeric.io.files.os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(src, dst)

    (tmp_path / "clipping.png").write_bytes(b"old")
    monkeypatch.setattr(numeric.io.files.os, "replace", replace)
    with pytest.raises(UnrolledError, match="No space left on device; nothing was written"):
        reports.build.build(str(tmp_path), only=("explode", "clipping"), fmt="png", force=True)
    # the first rename is undone and the replaced file restored: the whole set or nothing, no temporary
    assert [p.name for p in tmp_path.iterdir()] == ["clipping.png"]
    assert (tmp_path / "clipping.png").read_bytes() == b"old"


def test_longterm_reads_a_results_file_and_refuses_a_bad_one(tmp_path):
    """The pages state the numbers of the file they read; a file that is not a sweep's (or one from before
    the sweep compared initialisations) is exit 2, before any work."""
    from numeric.training.sweep import caption, memory_caption, memory_signal, profile_lag, read_results
    bundled = read_results()
    text, lags = caption(bundled), bundled["lags"]
    assert "chance is 0.20" in text
    for model in bundled["models"]:
        rates = ", ".join(f"{bundled['table'][model][str(lag)]['success_rate']:.0%}" for lag in lags)
        assert f"{model} {rates};" in text
        assert f"{model} {memory_signal(bundled['table'][model][str(lags[-1])]):.1f}" in text
    lag = profile_lag(bundled)
    assert lag == 50 and f"lstm:chrono {bundled['table']['lstm:chrono']['50']['median_key_ratio']:.3g}×" in memory_caption(bundled)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"cells": ["rnn"], "lags": [2], "table": {"rnn": {"2": {"success_rate": 1.0}}}}))
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": ["rnn"]}')
    for path in (old, bad):
        out = tmp_path / "r"
        result = runner.invoke(app, ["report", "--out", str(out), "--only", "memory", "--longterm-results", str(path)])
        assert result.exit_code == 2 and "--longterm-results" in result.output and not out.exists(), result.output


def test_every_figure_function_returns_a_figure_and_writes_nothing(tmp_path, monkeypatch):
    """Each section's draw(compute()) is a Figure with something drawn on it; no file appears anywhere we look."""
    from matplotlib.figure import Figure

    from reports import figure

    monkeypatch.chdir(tmp_path)
    for name in NAMES:
        fig = figure(name, steps=10)
        assert isinstance(fig, Figure) and fig.axes, name
        assert any(ax.has_data() or ax.texts or ax.patches for ax in fig.axes), name
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UnrolledError, match="unknown figure 'nope'; allowed: unrolled, explode"):
        figure("nope")
