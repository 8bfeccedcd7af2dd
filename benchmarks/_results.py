"""The benchmarks' shared output: replace one ``## section`` of benchmarks/results.md, atomically."""

from __future__ import annotations

import datetime
import platform
import re
import sys
from pathlib import Path
from typing import Mapping, Sequence

import torch

from dnnergy.io import atomic_write

__all__ = ["RESULTS", "replace_section", "write_section", "publish", "run_line", "standard_error_note"]

#: The results file every benchmark updates (one section each).
RESULTS = Path(__file__).resolve().with_name("results.md")


def replace_section(text: str, title: str, body: str) -> str:
    """``text`` with the ``## title`` section's body replaced (appended if absent); other sections untouched.

    Example: ``replace_section("# R\\n\\n## A\\n\\nold\\n", "A", "new")`` is ``"# R\\n\\n## A\\n\\nnew\\n"``.
    """
    block = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _m: block + "\n", text, count=1).rstrip("\n") + "\n"
    prefix = text.rstrip("\n") + "\n\n" if text.strip() else "# Benchmark results\n\n"
    return prefix + block


def write_section(title: str, body: str, path: Path = RESULTS) -> Path:
    """Replace the ``## title`` section of ``path`` (created if missing) with ``body``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return atomic_write(path, replace_section(text, title, body))


def publish(title: str, body: str, path: Path = RESULTS) -> Path:
    """Print the ``## title`` section to stdout, write it into ``path`` (:func:`write_section`) and
    say so on stderr: every benchmark's last step.

    Example: ``publish("Start-up", table, Path("out.md"))`` prints ``## Start-up`` and the table.
    """
    print(f"## {title}\n\n{body.strip()}\n")
    written = write_section(title, body, path)
    print(f"wrote the '{title}' section of {path}", file=sys.stderr)
    return written


def run_line(script: str, argv: Sequence[str], seconds: float) -> str:
    """How a run was made, for the top of a section: the command, the date, wall-clock seconds, threads and versions.

    Example: ``run_line("lowrank.py", ["--models", "lenet5"], 61.2)`` starts with
    ``"`python benchmarks/lowrank.py --models lenet5` on 2026-12-02: 61 s wall-clock"``.
    """
    command = " ".join(["python", f"benchmarks/{script}", *argv])
    return (f"`{command}` on {datetime.date.today()}: {seconds:.0f} s wall-clock ({torch.get_num_threads()} thread(s), "
            f"torch {torch.__version__}, Python {platform.python_version()}, shared CPU).")


def standard_error_note(test_images: Mapping[str, int]) -> str:
    """One sentence bounding the binomial standard error of the test accuracies a section reports.

    ``test_images`` maps a data set's name to its number of test images ``n``; the bound is
    ``sqrt(0.25 / n)`` (the SE ``sqrt(p (1 - p) / n)`` at its largest, p = 0.5), in points.
    Example: ``{"mnist": 1000}`` gives "... at most 1.6 points on mnist (1,000 test images)."
    """
    parts = [f"{100 * (0.25 / n) ** 0.5:.1f} points on {name} ({n:,} test images)" for name, n in test_images.items()]
    return "One binomial standard error of a test accuracy is at most " + ", ".join(parts) + "."
