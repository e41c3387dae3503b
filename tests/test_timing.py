"""Phase timings: compilation and sampling are booked apart from the phase they happen in."""

import time

from analysis.timing import Stopwatch


class FakeCache:
    compile_seconds = 0.0
    sample_seconds = 0.0


def test_compile_and_sample_seconds_are_booked_apart_and_per_run():
    cache = FakeCache()
    cache.compile_seconds, cache.sample_seconds = 100.0, 50.0  # an earlier run in the same session
    clock = Stopwatch(cache)
    started = time.perf_counter()
    with clock.phase("fit"):
        time.sleep(0.3)
        cache.compile_seconds += 0.2  # as if the cache compiled for 0.2 s of this phase's 0.3 s
        cache.sample_seconds += 0.05
    wall = time.perf_counter() - started
    seconds = clock.seconds()
    assert seconds["compile"] == 0.2 and seconds["sample"] == 0.05  # this run's, not the session's
    assert abs(seconds["fit"] - (wall - 0.25)) < 0.011  # the rest of the phase (rounded to 0.01 s)


def test_phases_accumulate_without_a_cache():
    clock = Stopwatch()
    for _ in range(2):
        with clock.phase("outputs"):
            time.sleep(0.02)
    assert 0.03 < clock.seconds()["outputs"] < 0.5 and set(clock.seconds()) == {"outputs"}
