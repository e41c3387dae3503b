"""The report's figures, drawn from results only: one module per subject, each function taking plain data
(the `summary.json` dict, one of its blocks, or arrays of draws) and returning a matplotlib Figure.

    meta         forest, funnel, cumulative, graded, missingness (the pooled analysis and its outcomes)
    bias         tipping, omega (publication bias: the tipping-point curve, the selection strength ω)
    sensitivity  tornado, forest (the sensitivity sweep)
    borrowing    update, sweep, map_fit (the target arm's robust MAP prior)
    appraisal    risk_of_bias, prisma (the appraisal and the search)
    clinical     time_to_response
    design       operating, assurance (the next single-arm study)
    clinician    icon_array (the answer for a clinician: of 100 patients treated)
    diagnostics  the MCMC and LOO diagnostics with arviz-plots (plot_trace, plot_rank, ...)

This package imports only the standard library, numpy, scipy, xarray, matplotlib and the ArviZ packages,
never the sampler stack or another `analysis` module but `analysis.processes` (the workers' initializer,
which ties them to the run's process) and `analysis.digits` (the pages' rule for how many digits a number
from draws may show); a test reads the sources. `draw` (or `submit` now and `collect` later) runs `Job`s
in two worker processes started with "spawn" that import this package only (not the parent's `__main__`),
so drawing never loads pymc or jax, except in the one worker that draws every ArviZ figure
(`ARVIZ_MODULE`: `arviz_base` loads jax by itself).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import sys
import threading
import types
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.layout_engine import PlaceHolderLayoutEngine  # noqa: E402

from analysis.processes import die_with_parent  # noqa: E402

from .style import COLOURS, DPI, STYLE, WIDTH, styled  # noqa: E402

__all__ = ["COLOURS", "DPI", "STYLE", "WIDTH", "Drawing", "Drawn", "FigureError", "Job", "collect", "draw", "draw_job",
           "save", "shutdown", "start_workers", "styled", "submit"]

WORKERS = 2


@dataclass(frozen=True)
class Job:
    """One figure to draw: ``function(*args)`` returns it, `name` is its file name (``name.png``, ``name.svg``).

    `function` must be a module-level function (it travels to a worker process by reference) and `args`
    plain data (dicts, lists, numpy or xarray arrays)."""

    name: str
    function: Callable
    args: tuple = ()


@dataclass(frozen=True)
class Drawn:
    """A drawn figure: its files, the process that drew it, the modules loaded there (top-level names, and
    `analysis` modules by their full names) and that process's main module (its file or module name, None
    for a worker that did not run the parent's main module again), so that a caller can check what drawing
    brought in."""

    name: str
    files: tuple[Path, ...]
    pid: int
    modules: tuple[str, ...]
    main: str | None = None


class FigureError(RuntimeError):
    """A figure could not be drawn or saved; the message names it and says what went wrong."""


def save(figure: plt.Figure, directory: Path | str, name: str, svg: bool = False) -> tuple[Path, ...]:
    """Write ``name.png`` (150 dpi) and, with `svg`, ``name.svg``, then close the figure; returns the paths.

    Deterministic: the same figure gives the same bytes. A figure with a layout engine (constrained
    layout) is laid out once, for the PNG, and the SVG reuses that layout; one without (the appraisal
    figures, placed in inches) is cropped to its drawn extent (``bbox_inches="tight"``). The SVG keeps text
    as text, has no date and takes its ids from `name` (``svg.hashsalt``)."""
    directory = Path(directory)
    directory.mkdir(exist_ok=True)  # never its parents: a run's folder that is gone stays gone
    engine = figure.get_layout_engine()
    bbox = "tight" if engine is None or isinstance(engine, PlaceHolderLayoutEngine) else None
    files = [directory / f"{name}.png"]
    try:
        figure.savefig(files[0], dpi=DPI, bbox_inches=bbox)
        if svg:
            if bbox is None:
                figure.set_layout_engine("none")  # the SVG keeps the PNG's layout: no second layout pass
            files.append(directory / f"{name}.svg")
            with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
                figure.savefig(files[1], bbox_inches=bbox, metadata={"Date": None})
    finally:
        plt.close(figure)
    return tuple(files)


def _loaded_modules() -> tuple[str, ...]:
    """The top-level modules loaded in this process, and every `analysis` module by its full name."""
    names = list(sys.modules)
    return tuple(sorted({name.split(".")[0] for name in names} | {n for n in names if n.startswith("analysis.")}))


def draw_job(job: Job, directory: Path | str, svg: bool = False) -> Drawn:
    """Draw and save one job in this process; a failure raises `FigureError` naming the figure."""
    try:
        figure = job.function(*job.args)
        if not isinstance(figure, plt.Figure):
            raise TypeError(f"{_qualified(job.function)} returned {type(figure).__name__}, not a Figure")
        files = save(figure, directory, job.name, svg)
    except Exception as error:  # noqa: BLE001 - re-raised with the figure's name
        plt.close("all")
        raise FigureError(f"figure {job.name!r} ({_qualified(job.function)}) failed: "
                          f"{type(error).__name__}: {error}") from None
    main = sys.modules.get("__main__")
    main_name = getattr(main, "__file__", None) or getattr(getattr(main, "__spec__", None), "name", None)
    return Drawn(job.name, files, os.getpid(), _loaded_modules(), main_name)


def _qualified(function) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


# --- the worker processes ---------------------------------------------------------------------------------

_POOLS: list[ProcessPoolExecutor] = []
_LOCK = threading.Lock()

ARVIZ_MODULE = f"{__name__}.diagnostics"
"""Jobs whose function is in this module draw with ArviZ: they all go to the first worker, so that only
one process imports arviz-plots and arviz-stats (which bring scipy.stats and, through arviz-base, jax:
about 2 s of CPU per process); the other worker imports matplotlib alone."""


@contextlib.contextmanager
def _bare_main():
    """While worker processes start: an empty ``__main__``, so that "spawn" does not re-import the parent's
    main module in the worker (``python -m analysis.fit`` would bring the whole sampler stack along)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _ready(module: str | None = None) -> int:
    if module is not None:
        importlib.import_module(module)
    return os.getpid()


def start_workers(arviz: bool = False) -> list[ProcessPoolExecutor]:
    """The worker processes ("spawn"), one pool each, started now if they are not running: call it early
    so that their imports (matplotlib) overlap other work. `arviz`: the ArviZ worker imports its figures'
    module too (for a process that waits for its run: `analysis.serve`). Kept for the life of the process
    (or until `shutdown`)."""
    with _LOCK:
        if not _POOLS:
            context = multiprocessing.get_context("spawn")
            with _bare_main():  # a process starts at its pool's first submit
                for k in range(WORKERS):
                    pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=die_with_parent)
                    pool.submit(_ready, ARVIZ_MODULE if arviz and k == 0 else None)
                    _POOLS.append(pool)
        return list(_POOLS)


def _workers_for(jobs: list[Job], pools: list[ProcessPoolExecutor]) -> list[ProcessPoolExecutor]:
    """The ArviZ worker for each ArviZ job; the other jobs in turn, the plain worker first."""
    plain = (pools[(k + 1) % len(pools)] for k in range(len(jobs)))
    return [pools[0] if getattr(job.function, "__module__", None) == ARVIZ_MODULE else next(plain) for job in jobs]


def shutdown() -> None:
    """Stop the worker processes (they are started again by the next `draw`)."""
    with _LOCK:
        pools = list(_POOLS)
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class Drawing:
    """Jobs submitted to the worker processes and not yet collected (`submit`, `collect`)."""

    jobs: list[Job]
    futures: list


def _unique(jobs: Sequence[Job]) -> None:
    names = [job.name for job in jobs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"figure names must be unique: {duplicated}")


def submit(jobs: Sequence[Job], directory: Path | str, svg: bool = False) -> Drawing:
    """Start drawing `jobs` into `directory` in the worker processes and return at once: a run submits a
    fit's diagnostic figures as soon as the fit is done, so that they are drawn while the run computes."""
    jobs = list(jobs)
    _unique(jobs)
    if not jobs:
        return Drawing([], [])
    Path(directory).mkdir(parents=True, exist_ok=True)

    def send(pools: list[ProcessPoolExecutor]) -> list:
        return [pool.submit(draw_job, job, str(directory), svg) for job, pool in zip(jobs, _workers_for(jobs, pools))]

    try:
        futures = send(start_workers())
    except BrokenProcessPool:
        shutdown()
        futures = send(start_workers())
    return Drawing(jobs, futures)


def collect(*drawings: Drawing) -> list[Drawn]:
    """Wait for the submitted jobs; returns what was drawn in job order. If figures fail, every other job
    still finishes and then `FigureError` names each figure that failed and why."""
    jobs = [job for d in drawings for job in d.jobs]
    _unique(jobs)
    results, failures = [], []
    for job, future in zip(jobs, [f for d in drawings for f in d.futures]):
        try:
            results.append(future.result())
        except FigureError as error:
            failures.append(str(error))
        except BrokenProcessPool as error:
            shutdown()
            failures.append(f"figure {job.name!r}: the worker process died ({error})")
        except Exception as error:  # noqa: BLE001 - e.g. arguments that cannot be sent to a worker
            failures.append(f"figure {job.name!r} ({_qualified(job.function)}) failed: "
                            f"{type(error).__name__}: {error}")
    if failures:
        raise FigureError("; ".join(failures))
    return results


def draw(jobs: Sequence[Job], directory: Path | str, svg: bool = False) -> list[Drawn]:
    """Draw every job into `directory` (PNG, and SVG when `svg`) in the two worker processes; returns what
    was drawn in job order. The files do not depend on which process drew them. If figures fail, every
    other job still finishes and then `FigureError` names each figure that failed and why."""
    return collect(submit(jobs, directory, svg))
