"""Issue 13, the user's first hour: tables fit the terminal and explain their units, progress says how long is left
(plain lines when stderr is not a terminal, nothing with --quiet), the demo labels what it shows.

Commands run through a real subprocess (``python -m dnnergy``) where the terminal matters:
``COLUMNS`` and whether stderr is a pipe are what the user's shell decides.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from dnnergy.cli._format import render
from dnnergy.cli._progress import PlainProgress, duration
from dnnergy.energy import EnergyRecord, EnergyReport
from dnnergy.metrics import Point
from dnnergy.report import Table, energy_table, points_table

FACTORY = """
import torch.nn as nn

def digits_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))

digits_mlp.input_shape = (1, 1, 8, 8)
"""

ANSI = re.compile(r"\x1b\[")


def dnnergy(*argv: str, columns: int | None = None, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m dnnergy ARGV`` with stdout and stderr piped (neither is a terminal)."""
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    environ.update(env)
    if columns is not None:
        environ["COLUMNS"] = str(columns)
    if cwd is not None:
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "dnnergy", *argv], capture_output=True, text=True, timeout=300,
                          env=environ, cwd=cwd)


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


# -- item 6: tables fit the width -----------------------------------------------------------------

@pytest.mark.slow  # subprocesses
def test_zoo_and_estimate_fit_80_columns_and_show_everything():
    zoo = dnnergy("zoo", columns=80)
    assert zoo.returncode == 0, zoo.stderr
    assert widest(zoo.stdout) <= 80
    for name in ("alexnet", "googlenet", "squeezenet1_1", "vit_tiny"):
        assert name in zoo.stdout
    assert "724M" in zoo.stdout and "published" in zoo.stdout  # AlexNet's published MACs (Krizhevsky et al.)
    estimate = dnnergy("estimate", "lenet5", columns=80)
    assert estimate.returncode == 0, estimate.stderr
    assert widest(estimate.stdout) <= 80
    # every column is still there (folded into a second table), with seed 002's LeNet-5 total 106M
    for header in ("compute", "weight", "@DRAM", "@global_buffer", "@RF", "total", "share"):
        assert header in estimate.stdout
    assert "(continued)" in estimate.stdout and "106M" in estimate.stdout
    # the legend says what the numbers are
    assert "Energy per image (batch 1)" in estimate.stdout
    assert "MAC-normalized = energy in units of one MAC" in " ".join(estimate.stdout.split())
    assert "@RF = each PE's register file" in " ".join(estimate.stdout.split())


@pytest.mark.slow  # subprocesses
def test_estimate_at_200_columns_is_one_table():
    wide = dnnergy("estimate", "lenet5", columns=200)
    assert wide.returncode == 0, wide.stderr
    assert widest(wide.stdout) <= 200 and "(continued)" not in wide.stdout
    header = next(line for line in wide.stdout.splitlines() if "layer" in line and "kind" in line)
    assert all(column in header for column in ("compute", "@MAC", "@DRAM", "@global_buffer", "@RF", "total", "share"))


@settings(max_examples=25, deadline=None)
@given(width=st.integers(30, 200), columns=st.integers(1, 14), names=st.lists(st.text("abcdefgh._0123", min_size=1, max_size=40),
                                                                             min_size=1, max_size=5))
def test_rendered_tables_never_exceed_the_width(width, columns, names):
    headers = ("layer", *(f"c{i}" for i in range(columns)))
    rows = [(name, *(1234567.0 * (i + 1) for i in range(columns))) for name in names]
    table = Table("t", headers, rows, ("total", *(1.0 for _ in range(columns))), notes=("a note " * 30,))
    out = io.StringIO()
    Console(width=width, file=out, highlight=False).print(render(table))
    text = out.getvalue()
    assert widest(text) <= width
    for header in headers[1:]:  # no column is dropped
        assert re.search(rf"\b{header}\b", text)
    assert text.count("1.23M") == len(names)  # each row's first number once


def test_energy_tables_say_per_image_or_per_batch_and_their_unit():
    # a batch of 8 images: 80 MAC-normalized of MACs and 1,600 of DRAM weight reads
    records = (EnergyRecord("fc", "fc", "compute", "MAC", 80, 16, 80.0), EnergyRecord("fc", "fc", "weight", "DRAM", 8, 16, 1600.0))
    report = EnergyReport(records, "MAC-normalized", "eyeriss", "row_stationary", "net", levels=("DRAM",), batch=8)
    per_image = energy_table(report, per=8)
    assert per_image.notes[0].startswith("Energy per image: the batch of 8 images' energy / 8")
    assert per_image.footer[-2] == 1680.0 / 8  # 210 per image
    per_batch = energy_table(report)
    assert per_batch.notes[0].startswith("Energy per batch of 8 images (not per image)")
    assert "MAC-normalized = energy in units of one MAC" in per_batch.notes[0]
    pj = energy_table(EnergyReport(records, "pJ", "horowitz45", "weights_once", "net", levels=("DRAM",)))
    assert pj.notes[0].startswith("Energy per image (batch 1)") and "joules" in pj.notes[0]
    assert "@DRAM = off-chip memory" in pj.notes[1] and "ifmap" in pj.notes[1]
    assert '"notes"' in pj.to_json()


# -- item 8: the trade-off table ---------------------------------------------------------------------

def _point(label: str, latency: float | None) -> Point:
    return Point(label=label, strength=0.5, val_accuracy=0.95, val_samples=500, test_accuracy=0.94, test_samples=1000,
                 energy=1e6, energy_unit="MAC-normalized", latency_s=latency)


def test_points_table_explains_val_and_test_and_drops_latency_nobody_measured():
    untimed = points_table([_point("magnitude (no retrain)", None)], "t")
    assert "latency (ms)" not in untimed.columns
    assert untimed.notes[0].startswith("val = validation split") and "test = held-out split" in untimed.notes[0]
    assert "latency" not in untimed.notes[1]
    timed = points_table([_point("a", 0.002), _point("b", None)], "t")
    assert timed.columns[8] == "latency (ms)" and timed.rows[0][8] == pytest.approx(2.0)  # 0.002 s = 2 ms
    assert "median batch-1 forward pass" in timed.notes[1]


@pytest.mark.slow
def test_demo_labels_what_is_retrained_and_is_silent_with_quiet(tmp_path):
    demo = dnnergy("demo", "--quiet", columns=120, DNNERGY_CACHE_DIR=str(tmp_path))
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr == ""
    text = " ".join(demo.stdout.split())
    assert "magnitude pruning NOT retrained" in text and "magnitude (no retrain)" in text and "eap (fine-tuned)" in text
    assert "latency (ms)" not in demo.stdout and "No latency column" in text
    assert "val = validation split" in text
    assert widest(demo.stdout) <= 120


# -- item 9: progress --------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_prints_at_most_every_interval_with_the_time_left():
    out, clock = io.StringIO(), Clock()
    with PlainProgress(out, interval=5, clock=clock, tick=False) as progress:
        task = progress.add_task("sweeping magnitude", total=5)
        clock.now += 1
        progress.update(task, advance=1)  # 1 s after the start: nothing
        clock.now += 29
        progress.update(task, advance=1, description="sweeping magnitude: point 2 done")
        clock.now += 2
        progress.update(task, advance=1)  # 2 s after the last line: nothing
        progress.remove_task(task)
    lines = out.getvalue().splitlines()
    # 2 of 5 steps in 30 s: 15 s a step, 3 left -> 45 s
    assert lines == ["[2/5] sweeping magnitude: point 2 done ... 30 s elapsed, ~45 s left",
                     "[3/5] sweeping magnitude: done in 32 s"]


def test_plain_progress_of_a_short_task_prints_nothing():
    out, clock = io.StringIO(), Clock()
    with PlainProgress(out, interval=5, clock=clock, tick=False) as progress:
        task = progress.add_task("preparing lenet300 on mnist")
        clock.now += 4.9
        progress.update(task, description="preparing: trial 1")
    assert out.getvalue() == ""  # an error found at once stays the only line on stderr


def test_plain_progress_ticks_without_updates():
    out = io.StringIO()
    with PlainProgress(out, interval=0.2) as progress:
        progress.add_task("training lenet300")
        time.sleep(0.7)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("training lenet300 ... ") for line in lines[:-1])
    assert lines[-1].startswith("training lenet300: done in ")


def test_plain_progress_of_unknown_length_counts_without_an_estimate():
    out, clock = io.StringIO(), Clock()
    with PlainProgress(out, interval=0, clock=clock) as progress:
        task = progress.add_task("eap on lenet300")
        clock.now += 95
        progress.update(task, description="eap on lenet300: trial 3, validation accuracy 97.10%")
    assert out.getvalue().splitlines() == ["eap on lenet300 ...",
                                           "eap on lenet300: trial 3, validation accuracy 97.10% ... 1 min 35 s elapsed",
                                           "eap on lenet300: done in 1 min 35 s"]


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (0.4, 42.3, 95, 3725)] == ["0 s", "42 s", "1 min 35 s", "1 h 2 min"]


@pytest.fixture()
def digits(tmp_path):
    """A digits MLP factory in ``tmp_path`` and untrained weights for it (``--weights``: no training)."""
    import torch

    (tmp_path / "output_digits.py").write_text(textwrap.dedent(FACTORY))
    sys.path.insert(0, str(tmp_path))
    try:
        import output_digits

        torch.manual_seed(0)
        torch.save(output_digits.digits_mlp().state_dict(), tmp_path / "w.pt")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("output_digits", None)
    return tmp_path


@pytest.mark.slow  # two subprocesses: about 12 s of CPU
def test_progress_without_a_terminal_is_plain_lines_and_quiet_is_silent(digits):
    args = ("tradeoff", "output_digits:digits_mlp", "--data", "digits", "--weights", str(digits / "w.pt"),
            "--strengths", "0,0.5,0.9")
    shown = dnnergy(*args, "--plot", str(digits / "a.png"), cwd=digits, DNNERGY_CACHE_DIR=str(digits / "cache"),
                    DNNERGY_PROGRESS_SECONDS="0")
    assert shown.returncode == 0, shown.stderr
    assert not ANSI.search(shown.stderr) and not ANSI.search(shown.stdout)
    lines = shown.stderr.splitlines()
    assert lines[0] == "preparing output_digits:digits_mlp on digits (training once if not cached) ..."
    assert "[0/3] sweeping magnitude ..." in lines
    assert any(re.fullmatch(r"\[[12]/3\] sweeping magnitude: point [12] done \.\.\. \d+ s elapsed, ~\d+ s left", line)
               for line in lines)
    assert re.search(r"^\[3/3\] sweeping magnitude: done in \d+ s$", shown.stderr, re.M)
    assert lines[-1] == f"wrote {digits / 'a.png'}"
    quiet = dnnergy(*args, "--plot", str(digits / "b.png"), "--quiet", cwd=digits, DNNERGY_CACHE_DIR=str(digits / "cache"))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and (digits / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert "sweeping" not in quiet.stdout and "val accuracy" in quiet.stdout


# -- item 10: the trade-off plot of the CLI ------------------------------------------------------------

def test_tradeoff_plot_is_titled_and_in_percent(cli, digits, monkeypatch):
    import dnnergy.report.plots as plots

    seen = []
    save = plots._saved

    def spy(fig, path):
        (ax,) = fig.axes
        seen.append((ax.get_title(), ax.get_ylabel(), [list(line.get_ydata()) for line in ax.get_lines()]))
        return save(fig, path)

    monkeypatch.setattr(plots, "_saved", spy)
    monkeypatch.syspath_prepend(str(digits))
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(digits / "cache"))
    try:
        code, out, err = cli("tradeoff", "output_digits:digits_mlp", "--data", "digits", "--weights", str(digits / "w.pt"),
                             "--strengths", "0,0.9", "--hardware", "horowitz45", "--plot", str(digits / "c.png"), "--quiet")
    finally:
        sys.modules.pop("output_digits", None)
    assert code == 0, err
    ((title, ylabel, curves),) = seen
    assert "output_digits:digits_mlp" in title and "digits" in title and "horowitz45" in title and "magnitude" in title
    assert ylabel == "validation accuracy (%)"
    # the table's percentages are the plot's: every accuracy in the table appears on the curve
    table = {float(m) for m in re.findall(r"(\d+\.\d)%", out)}
    assert {round(y, 1) for y in curves[0]} <= table and max(curves[0]) > 1
