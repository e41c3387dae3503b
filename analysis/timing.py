"""Wall time per phase of a run, with compilation and sampling counted apart from the phase they occur in.

`run.json` records these figures and `benchmarks/` prints them: compilation, not sampling, dominates a
run, and the split shows where a change of code or machine moved the time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Seconds per named phase; time the sampler cache spent compiling or sampling is booked to those two.

    A phase's own time is its wall time less the time the cache was busy in it (`busy_seconds`: compiling
    or sampling, in any thread). Fits in parallel threads can compile one program while sampling another,
    so `compile` + `sample` may exceed the busy time by that overlap. A step run in a thread beside the
    others (the graded-outcome model) is booked its own wall time (`book`), its compiling and sampling
    included; the phases that ran meanwhile lose the time its program ran, so the phases then overlap."""

    def __init__(self, cache=None) -> None:
        self._seconds: dict[str, float] = {}
        self.attach(cache)

    def _sampler_seconds(self) -> float:
        if self._cache is None:
            return 0.0
        busy = getattr(self._cache, "busy_seconds", None)
        return busy if busy is not None else self._cache.compile_seconds + self._cache.sample_seconds

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started, sampler_before = time.perf_counter(), self._sampler_seconds()
        try:
            yield
        finally:
            own = time.perf_counter() - started - (self._sampler_seconds() - sampler_before)
            self._seconds[name] = self._seconds.get(name, 0.0) + own

    def book(self, name: str, seconds: float) -> None:
        """Add `seconds` to phase `name` (a step timed in its own thread)."""
        self._seconds[name] = self._seconds.get(name, 0.0) + seconds

    def attach(self, cache) -> None:
        """Book compiling and sampling from now on (a cache shared across runs has earlier seconds)."""
        self._cache = cache
        self._baseline = (cache.compile_seconds, cache.sample_seconds) if cache is not None else (0.0, 0.0)
        self._built = getattr(cache, "compilations", 0)

    def compilations(self) -> int:
        """Programs built (not loaded from the disk cache) since `attach`."""
        return getattr(self._cache, "compilations", 0) - self._built

    def seconds(self) -> dict[str, float]:
        booked = dict(self._seconds)
        if self._cache is not None:
            booked.update(compile=self._cache.compile_seconds - self._baseline[0],
                          sample=self._cache.sample_seconds - self._baseline[1])
        return {name: round(value, 2) for name, value in booked.items()}
