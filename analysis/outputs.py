"""Write a run's outputs so that a failed or interrupted run never replaces an earlier good one."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

EXIT_WRITE_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 3, 130, 143


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that the cleanup of a Ctrl-C runs for it too."""


_STOPS = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}
_received: list[int] = []  # signals received during the current run, in order
_committed: list[Path] = []  # output directories this run has swapped in


def _on_stop_signal(signum, frame):
    """Record the signal, then raise. Python may deliver the signal inside a garbage-collector or finaliser
    callback, where the exception is printed and discarded; the record still stops the run at the commit."""
    _received.append(signum)
    raise _STOPS[signum]()


def _raise_if_stopped() -> None:
    if _received:
        raise _STOPS[_received[0]]()


def _quiet_discarded_stops(unraisable) -> None:
    """A stop raised inside a callback is recorded already; anything else is reported as usual."""
    if not isinstance(unraisable.exc_value, tuple(_STOPS.values())):
        sys.__unraisablehook__(unraisable)


def run_to_completion(work: Callable[[], int], out_dir: Path) -> int:
    """Run a command's work; Ctrl-C (exit 130), SIGTERM (143) or an OS error such as a full disk (3) end it
    with one line on stderr instead of a traceback. Outputs go through `atomic_directory`, so `out_dir`
    is then exactly as it was."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, _on_stop_signal) for signum in _STOPS} if in_main_thread else {}
    previous_hook, sys.unraisablehook = sys.unraisablehook, _quiet_discarded_stops
    _received.clear()
    _committed.clear()
    try:
        status = work()
        _raise_if_stopped()
        return status
    except (KeyboardInterrupt, Terminated) as stop:
        verb = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        where = (f"after {', '.join(map(str, _committed))} had been written" if _committed
                 else f"nothing written; {out_dir} is as it was")
        print(f"{verb}: {where}", file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(stop, KeyboardInterrupt) else EXIT_TERMINATED
    except OSError as err:
        print(f"error: the run could not be completed ({err}); {out_dir} is as it was", file=sys.stderr)
        return EXIT_WRITE_FAILED
    finally:
        sys.unraisablehook = previous_hook
        _received.clear()
        _committed.clear()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a fresh sibling directory to fill; on success it replaces `target`, on any error it vanishes.

    The sibling lives in the same parent, so the final step is a rename on one file system.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = None
    with _stop_signals_held():
        try:
            _raise_if_stopped()  # a stop that was delivered where it could not be raised
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if target.exists():
            previous = target.with_name(f".{target.name}.previous-{os.getpid()}")
            os.replace(target, previous)
        os.replace(staging, target)
        _committed.append(target)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while the outputs are swapped in, so the swap is all or nothing; a stop that
    arrives meanwhile is delivered after it (and the run then reports it was stopped with outputs written)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, list(_STOPS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
