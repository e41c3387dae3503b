"""One interface for running independent fits: in this process, in local worker processes, or on Dask.

SBC simulations and sensitivity variants are independent fits, so they scale out. Every executor runs
`function(task)` for each task and returns the results in task order. Each process keeps one
`ModelCache` (`process_cache`), so a worker prepares each model structure's program once (loading it
from the disk cache, or building it) and reuses it for all the tasks it is given. A task carries its own seed and compiled samplers start from data-independent
points, so results do not depend on which executor, worker or cache ran them.

- `InProcessExecutor`: no subprocesses (the default: every fit spreads its chains over the cores already);
- `LocalExecutor`: a pool of local worker processes;
- `DaskExecutor`: an existing Dask distributed cluster, given by its scheduler address (`--scheduler`),
  through Dask's own client; Dask is an optional dependency (`pip install -e '.[dask]'`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any, Protocol

from tqdm import tqdm

from analysis.processes import die_with_parent
from analysis.errors import InputError

_PROCESS_CACHE = None


def process_cache():
    """This process's sampler cache, created on first use (imports the model stack lazily)."""
    global _PROCESS_CACHE
    if _PROCESS_CACHE is None:
        from analysis.engine.programs import ModelCache

        _PROCESS_CACHE = ModelCache()
    return _PROCESS_CACHE


def _run_task(function: Callable, task: Any) -> tuple[int, int, Any]:
    """Run one task in a worker; report the worker's identity and how many programs it has prepared."""
    logging.getLogger("pymc").setLevel(logging.WARNING)  # per-fit "Sampling: [...]" notices are noise here
    result = function(task)
    return os.getpid(), process_cache().programs, result


class Executor(Protocol):
    description: str

    def map(self, function: Callable, tasks: Sequence, progress: str | None = None) -> list: ...

    @property
    def programs(self) -> int:
        """Sampler programs prepared by all workers so far (one per model structure and worker)."""
        ...

    def close(self) -> None: ...


class _CountingExecutor:
    """Shared bookkeeping: results in task order, programs summed over workers."""

    description = ""

    def __init__(self) -> None:
        self._programs: dict[int, int] = {}

    @property
    def programs(self) -> int:
        return sum(self._programs.values())

    def _collect(self, outcomes, n_tasks: int, progress: str | None) -> list:
        results: list = [None] * n_tasks
        bar = tqdm(total=n_tasks, desc=progress, disable=not progress or not sys.stderr.isatty(), file=sys.stderr)
        for index, (pid, programs, result) in outcomes:
            self._programs[pid] = max(programs, self._programs.get(pid, 0))
            results[index] = result
            bar.update()
        bar.close()
        return results

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InProcessExecutor(_CountingExecutor):
    """Tasks in this process, in `threads` threads (JAX releases the interpreter while it samples, so two
    fits overlap on two cores); results are in task order and do not depend on the number of threads."""

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        self.threads = threads
        self.description = "this process" + (f" ({threads} threads)" if threads > 1 else "")

    def map(self, function: Callable, tasks: Sequence, progress: str | None = None) -> list:
        if self.threads == 1:
            outcomes = ((i, _run_task(function, task)) for i, task in enumerate(tasks))
            return self._collect(outcomes, len(tasks), progress)
        with ThreadPoolExecutor(self.threads) as pool:
            futures = {pool.submit(_run_task, function, task): i for i, task in enumerate(tasks)}
            return self._collect(((futures[f], f.result()) for f in as_completed(futures)), len(tasks), progress)


class LocalExecutor(_CountingExecutor):
    """Worker processes started fresh ('spawn'): forking a process that already runs sampler threads is unsafe."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.description = f"{workers} local worker processes"
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=die_with_parent)

    def map(self, function: Callable, tasks: Sequence, progress: str | None = None) -> list:
        futures = {self._pool.submit(_run_task, function, task): i for i, task in enumerate(tasks)}
        return self._collect(((futures[f], f.result()) for f in as_completed(futures)), len(tasks), progress)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(_CountingExecutor):
    def __init__(self, address: str) -> None:
        super().__init__()
        try:
            from distributed import Client
        except ImportError as err:
            raise InputError("--scheduler needs Dask: pip install -e '.[dask]'") from err
        try:
            _probe(address)  # a refused or unroutable address fails at once, not after the client's timeout
            self._client = Client(address, timeout="20s")
        except OSError as err:
            raise InputError(f"--scheduler {address}: cannot reach a Dask scheduler there ({err})") from err
        except (ValueError, TypeError) as err:  # Dask's words for an address it cannot parse
            raise InputError(f"--scheduler {address}: not a scheduler address ({err})") from err
        self.description = f"Dask cluster at {address}"

    def map(self, function: Callable, tasks: Sequence, progress: str | None = None) -> list:
        from distributed import as_completed as dask_completed

        # pure=False: equal tasks are still separate fits; retries=0: a failed fit is reported, not rerun.
        futures = self._client.map(_run_task, [function] * len(tasks), tasks, pure=False, retries=0)
        index = {f.key: i for i, f in enumerate(futures)}
        return self._collect(((index[f.key], f.result()) for f in dask_completed(futures)), len(tasks), progress)

    def close(self) -> None:
        self._client.close()


def _probe(address: str, seconds: float = 5.0) -> None:
    """Open and close a TCP connection to a [tcp://]host:port address; ValueError for anything else (before
    Dask's client, which waits for its timeout on an address it cannot parse)."""
    scheme, _, rest = address.rpartition("://")
    host, _, port = rest.rpartition(":")
    if scheme not in ("", "tcp") or not host or not port.isdigit() or host.count("[") != host.count("]"):
        raise ValueError("expected tcp://HOST:PORT")
    socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """Dask if a scheduler address is given; else `workers` local processes, or this process when that is
    one (the default: each fit already spreads its chains over `sampling.cores` threads)."""
    if scheduler:
        return DaskExecutor(scheduler)
    workers = workers if workers is not None else 1
    if workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}")
    return InProcessExecutor() if workers == 1 else LocalExecutor(workers)
