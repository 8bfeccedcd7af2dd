"""One executor interface for every sweep: ``map(fn, items) -> list`` in order, run here, in a process pool or on Ray.

Proposals of :mod:`~dnnergy.explore.netadapt`, per-layer scans and trade-off sweeps are
lists of independent, picklable tasks. An executor runs ``fn(item)`` for each item and
returns the results in the items' order:

* :class:`LocalExecutor` (``"local"``, the default): one after the other in this
  process, or with ``workers > 1`` in a ``ProcessPoolExecutor`` started with the
  *spawn* context (a child forked from a process whose torch thread pool runs can hang).
* :class:`RayExecutor` (``"ray"``): the same tasks as Ray tasks, on the cluster at
  ``address`` or on a local instance (``ray.init()``) when none is given. ``fn`` goes to
  Ray's object store once, so a task function that holds a large context (a data set)
  is shipped once, not once per item. Ray is the optional extra ``dnnergy[ray]``.

Every task seeds itself (a context carries its seed), so the same seed gives the same
results on every executor. Any object with a ``concurrent.futures``-style
``map(fn, items)`` (a ``ProcessPoolExecutor``, a ``ThreadPoolExecutor``) is accepted
wherever an executor is: :func:`as_executor` resolves names and passes objects through.
Example::

    squares = as_executor("local").map(abs, [-1, 2, -3])          # [1, 2, 3]
    with RayExecutor(num_cpus=2) as ray_executor:
        same = ray_executor.map(abs, [-1, 2, -3])
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from ..errors import UserInputError

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "EXECUTORS", "as_executor", "runs_here"]

#: Names accepted by :func:`as_executor` (``--executor`` on the command line).
EXECUTORS = ("local", "ray")


@runtime_checkable
class Executor(Protocol):
    """Runs ``fn`` on every item and returns the results in order (``concurrent.futures``-style ``map``).

    Minimal implementation::

        class Serial:
            def map(self, fn, items):
                return [fn(item) for item in items]
    """

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterable[Any]: ...


class LocalExecutor:
    """Tasks on this machine: one after the other in this process (``workers`` 0 or 1), or in a
    spawned process pool of ``workers`` processes.

    Example: ``LocalExecutor().map(abs, [-1, 2, -3]) == [1, 2, 3]`` with ``LocalExecutor().in_process``
    True; ``LocalExecutor(workers=2).map(abs, [-1, 2, -3])`` gives the same from two spawned processes
    (``in_process`` False).
    """

    def __init__(self, workers: int = 0):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise UserInputError(f"LocalExecutor: workers must be an int >= 0 (got {workers!r})")
        self.workers = workers

    @property
    def in_process(self) -> bool:
        """True when tasks run in this process (they may then report progress to it)."""
        return self.workers <= 1

    def map(self, fn: Callable[[Any], Any], *iterables: Iterable[Any]) -> list[Any]:
        """``[fn(item) for item in items]`` in order, here or in the pool (``fn`` and items must pickle)."""
        if self.in_process:
            return list(map(fn, *iterables))
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(fn, *iterables))

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"


def _ray():
    try:
        import ray
    except ImportError:
        raise UserInputError("the ray executor needs Ray: pip install 'dnnergy[ray]'") from None
    return ray


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    """What one Ray task runs (Ray resolves ``fn``'s object reference before the call)."""
    return fn(item)


class RayExecutor:
    """Tasks as Ray tasks (one CPU each): on the cluster at ``address`` (``"auto"``, ``"ray://host:10001"``),
    or on a local Ray instance started here with ``num_cpus`` CPUs when ``address`` is ``None``.

    Ray is started on the first :meth:`map` unless it already runs in this process (then
    it is used as it is). :meth:`shutdown` (or leaving a ``with`` block) stops an
    instance this executor started.

    Example (starting Ray takes seconds)::

        executor = RayExecutor(num_cpus=2)
        executor.start()                      # optional: map starts Ray itself
        executor.map(abs, [-1, 2, -3])        # [1, 2, 3], one Ray task per item
        executor.shutdown()                   # stops the local instance started above
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        if address is not None and (not isinstance(address, str) or not address):
            raise UserInputError(f"RayExecutor: address must be a Ray address such as 'auto' or 'ray://host:10001' (got {address!r})")
        if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
            raise UserInputError(f"RayExecutor: num_cpus must be a positive int or None (got {num_cpus!r})")
        _ray()  # a missing extra fails here, before any work
        self.address, self.num_cpus, self._started = address, num_cpus, False

    def start(self) -> None:
        """Connect to (or start) Ray now, unless it runs already."""
        ray = _ray()
        if ray.is_initialized():
            return
        options = {"address": self.address} if self.address else {"num_cpus": self.num_cpus, "include_dashboard": False}
        try:
            ray.init(**options, log_to_driver=False, configure_logging=False)
        except ConnectionError as exc:
            raise UserInputError(f"--ray-address {self.address}: cannot connect to Ray ({exc})") from None
        self._started = True

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(item) for item in items]`` in order, one Ray task per item (``fn`` shipped once)."""
        ray = _ray()
        self.start()
        remote = ray.remote(num_cpus=1)(_call)
        shared = ray.put(fn)
        return ray.get([remote.remote(shared, item) for item in items])

    def shutdown(self) -> None:
        """Stop the Ray instance this executor started (a cluster it connected to keeps running)."""
        if self._started:
            _ray().shutdown()
            self._started = False

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r})"


def as_executor(executor: Any = None, *, workers: int = 0, address: str | None = None) -> Any:
    """The executor ``executor`` names: ``None``/``"local"`` -> :class:`LocalExecutor` (``workers``),
    ``"ray"`` -> :class:`RayExecutor` (``address``); an object with ``map`` is returned as it is.

    Example: ``as_executor()`` is ``LocalExecutor(workers=0)``, ``as_executor("local", workers=2)`` a pool of
    two; ``as_executor(ThreadPoolExecutor(2))`` returns that pool unchanged.
    """
    if executor is None or executor == "local":
        if address is not None:
            raise UserInputError("--ray-address needs --executor ray")
        return LocalExecutor(workers)
    if executor == "ray":
        return RayExecutor(address)
    if isinstance(executor, str) or not callable(getattr(executor, "map", None)):
        raise UserInputError(f"executor must be one of {', '.join(EXECUTORS)} or an object with map(fn, items) "
                             f"(got {executor!r})")
    return executor


def runs_here(executor: Any) -> bool:
    """True when ``executor`` runs tasks in this process (``None`` or a serial :class:`LocalExecutor`), so a
    task may keep callbacks that do not pickle (a progress display)."""
    return executor is None or executor == "local" or (isinstance(executor, LocalExecutor) and executor.in_process)
