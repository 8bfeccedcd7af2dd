"""Progress of long CLI jobs on stderr, so ``--json`` on stdout stays clean.

:func:`progress_display` picks one of three displays with the same small interface
(``add_task``, ``update``, ``remove_task``, a context manager), a subset of
:class:`rich.progress.Progress`:

* on a terminal, a live rich bar with steps done, elapsed time and (when the number of
  steps is known) the time left;
* when stderr is a file or a pipe (a log, CI), :class:`PlainProgress`: plain lines without
  ANSI codes, at most one every ``interval`` seconds per task while it runs and one when
  it ends, e.g. ``[2/5] sweeping magnitude: point 2 done ... 30 s elapsed, ~45 s left``;
  a task shorter than ``interval`` prints nothing (an error found at once stays one line);
* nothing with ``--quiet``.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from ..errors import UserInputError

__all__ = ["PlainProgress", "progress_display", "duration", "reporter", "stepping"]

#: Seconds between two plain progress lines of one task (the environment variable ``DNNERGY_PROGRESS_SECONDS`` replaces it).
INTERVAL = 10.0


def _interval() -> float:
    """:data:`INTERVAL`, or ``$DNNERGY_PROGRESS_SECONDS`` (seconds >= 0; 0 prints every update)."""
    text = os.environ.get("DNNERGY_PROGRESS_SECONDS", "")
    if not text:
        return INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UserInputError(f"DNNERGY_PROGRESS_SECONDS must be a number of seconds >= 0 (got {text!r})")
    return value


def duration(seconds: float) -> str:
    """``42.3 -> '42 s'``, ``95 -> '1 min 35 s'``, ``3725 -> '1 h 2 min'``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@dataclass
class _Task:
    label: str
    description: str
    total: float | None
    started: float
    printed: float  # when its last line was printed (its start before the first)
    completed: float = 0.0
    shown: bool = False


class PlainProgress:
    """Progress as plain lines on ``stream`` (default stderr): for logs and pipes, where a live bar cannot draw.

    A task prints at most every ``interval`` seconds (default :data:`INTERVAL`, or
    ``$DNNERGY_PROGRESS_SECONDS``): when it is updated, and from a background thread
    (``tick``) while no update comes; once it has printed, it prints again when it ends.
    A task that ends within ``interval`` prints nothing; ``interval=0`` prints its start,
    every update and its end. With a known ``total`` the line counts steps and estimates
    the time left from the mean step so far: ``[2/5] label ... 30 s elapsed, ~45 s left``
    (2 steps in 30 s, 3 left at 15 s each).
    """

    def __init__(self, stream: TextIO | None = None, interval: float | None = None, clock: Callable[[], float] = time.monotonic,
                 tick: bool = True):
        self.stream = stream
        self.interval = _interval() if interval is None else interval
        self.clock = clock
        self.tasks: dict[int, _Task] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True) if tick and self.interval > 0 else None

    def __enter__(self) -> "PlainProgress":
        if self._ticker is not None:
            self._ticker.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for task_id in list(self.tasks):
            self.remove_task(task_id, finished=exc[0] is None)

    def _tick(self) -> None:
        while not self._stop.wait(min(1.0, self.interval)):
            with self._lock:
                now = self.clock()
                for task in self.tasks.values():
                    self._maybe_print(task, now)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        with self._lock:
            task_id = next(self._ids)
            now = self.clock()
            self.tasks[task_id] = task = _Task(description, description, total, now, now)
            if self.interval == 0:
                task.shown = True
                self._print(f"{self._steps(task)}{description} ...")
            return task_id

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None,
               description: str | None = None, total: float | None = None, **_: Any) -> None:
        with self._lock:
            task = self.tasks[task_id]
            if completed is not None:
                task.completed = completed
            if advance:
                task.completed += advance
            if description is not None:
                task.description = description
            if total is not None:
                task.total = total
            self._maybe_print(task, self.clock())

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def remove_task(self, task_id: int, finished: bool = True) -> None:
        with self._lock:
            task = self.tasks.pop(task_id)
            if finished and task.shown:
                self._print(f"{self._steps(task)}{task.label}: done in {duration(self.clock() - task.started)}")

    # -- lines -------------------------------------------------------------------------
    @staticmethod
    def _steps(task: _Task) -> str:
        if task.total:
            return f"[{task.completed:.0f}/{task.total:.0f}] "
        return f"[{task.completed:.0f}] " if task.completed else ""

    def _maybe_print(self, task: _Task, now: float) -> None:
        if now - task.printed >= self.interval:
            task.printed, task.shown = now, True
            self._print(self._line(task, now))

    def _line(self, task: _Task, now: float) -> str:
        elapsed = now - task.started
        line = f"{self._steps(task)}{task.description} ... {duration(elapsed)} elapsed"
        if task.total and 0 < task.completed < task.total:
            line += f", ~{duration(elapsed / task.completed * (task.total - task.completed))} left"
        return line

    def _print(self, line: str) -> None:
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)


def progress_display(quiet: bool = False):
    """The progress display for a job: a live rich bar on a terminal (with the time left when a task's number of
    steps is known), :class:`PlainProgress` lines when stderr is not a terminal, nothing at all when ``quiet``."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    if not quiet and not console.is_terminal:
        return PlainProgress()
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=True, disable=quiet)


def reporter(progress: Any, task: Any, label: str) -> Callable[[Any], None]:
    """A context's ``progress`` callback that shows a method's events on ``task`` of ``progress``: each
    ``"evaluated"`` event as a trial (``"label: trial 3, validation accuracy 97.10%"``), each ``"step"``
    (:func:`stepping`) as one step done, which moves the bar and the time left."""
    trials = [0]

    def report(event: Any) -> None:
        if event.kind == "evaluated":
            trials[0] += 1
            progress.update(task, description=f"{label}: trial {trials[0]}, {event.message}")
        elif event.kind == "step":
            progress.update(task, advance=1, description=f"{label}: {event.message}")

    return report


def stepping(context: Any, what: str = "point"):
    """An executor for :func:`~dnnergy.explore.tradeoff`: its tasks one after the other in this process (a serial
    :class:`~dnnergy.explore.executors.LocalExecutor`, so they keep the context's progress callback), each finished
    one reported to ``context`` as a ``"step"`` event (``"point 2 done"``), which advances a progress task."""
    from ..compress.context import Event
    from ..explore.executors import LocalExecutor

    class Stepping(LocalExecutor):
        done = 0

        def map(self, fn: Callable[[Any], Any], *iterables: Any) -> list[Any]:
            results = []
            for args in zip(*iterables):
                results.append(fn(*args))
                self.done += 1
                context.notify(Event("step", f"{what} {self.done} done"))
            return results

    return Stepping()
