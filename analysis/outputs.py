"""The output directory belongs to the tool: it is never a user's file or folder, and it is replaced only
whole, by a complete run.

Before any computation, `check_destination` refuses (one line, exit 2) an `--out` that is a file, the
project root, an input's folder or an ancestor of an input, or an existing directory that is not a previous
output of this tool (recognised by its `MARKER` file; `--force` is needed to replace even that one, unless
it is the command's own default location); and it checks that the parent is writable and has room. The run
writes into a staging directory beside the target, which replaces the target in one rename when complete
(`atomic_directory`). Ctrl-C, SIGTERM, a full disk or any error leave the old output as it was and remove
the staging directory; a staging directory left by a killed run (kill -9) is removed by the next run.
"""

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

from analysis.errors import InputError

MARKER = ".hhd-output"
"""A file every output directory of this tool holds: what `--force` may replace."""
STAGING = ".partial-"
MIN_FREE_BYTES = 200 * 1024 * 1024
"""Free space a run needs beside its output (the figures, draws and pages of a run are tens of MB)."""
EXIT_WRITE_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 3, 130, 143


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that the cleanup of a Ctrl-C runs for it too."""


_STOPS = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}
_received: list[int] = []
_committed: list[Path] = []


# --- where a run may write -------------------------------------------------------------------------------


def is_tool_output(path: Path) -> bool:
    return (path / MARKER).is_file()


def check_destination(out_dir: Path, inputs: list[Path], project_root: Path, force: bool, default: bool) -> Path:
    """The resolved output directory, or InputError with one line saying why the run may not write there
    (see the module docstring). `default`: the command's own location for this config (reports/<name>),
    which it replaces without --force once it holds a previous output."""
    out = Path(out_dir).expanduser().resolve()
    where = f"--out {out_dir}"
    if out.exists() and not out.is_dir():
        raise InputError(f"{where}: is a file, not a folder; the output folder belongs to the tool (choose a new folder)")
    if out == project_root.resolve() or out == Path(out.anchor):
        raise InputError(f"{where}: is the project root; choose a folder of its own (default: reports/<config>)")
    for path in inputs:
        resolved = Path(path).resolve()
        if resolved == out or out in resolved.parents:
            raise InputError(f"{where}: holds the input {path}; choose a folder of its own")
    if out.is_dir() and any(out.iterdir()):
        if not is_tool_output(out):
            raise InputError(f"{where}: exists and is not an output of this tool (no {MARKER} file); "
                             "choose a new folder, or empty this one first")
        if not (force or default):
            raise InputError(f"{where}: holds a previous output; pass --force to replace it")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{where}: cannot write in {parent} (permission denied)")
    free = shutil.disk_usage(parent).free
    if free < MIN_FREE_BYTES:
        raise InputError(f"{where}: only {free // (1024 * 1024)} MB free in {parent}; a run needs about "
                         f"{MIN_FREE_BYTES // (1024 * 1024)} MB")
    return out


def clean_stale_staging(out_dir: Path) -> None:
    """Remove staging directories of this target left by runs that were killed (their process is gone)."""
    parent = out_dir.parent
    if not parent.is_dir():
        return
    for path in parent.glob(f".{out_dir.name}{STAGING}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- stopping and committing -----------------------------------------------------------------------------


def _on_stop_signal(signum, frame):
    """Record the signal, then raise. Python may deliver the signal inside a garbage-collector or finaliser
    callback, where the exception is printed and discarded; the record still stops the run at the commit."""
    _received.append(signum)
    raise _STOPS[signum]()


def _raise_if_stopped() -> None:
    if _received:
        raise _STOPS[_received[0]]()


def _quiet_discarded_stops(unraisable) -> None:
    if not isinstance(unraisable.exc_value, tuple(_STOPS.values())):
        sys.__unraisablehook__(unraisable)


def install_stop_handlers() -> None:
    """Ctrl-C and SIGTERM raise from now on (called first thing, so that even an interrupt during the
    imports ends with one line)."""
    if threading.current_thread() is threading.main_thread():
        for signum in _STOPS:
            signal.signal(signum, _on_stop_signal)
    sys.unraisablehook = _quiet_discarded_stops


def run_to_completion(work: Callable[[], int], out_dir: Path, on_error: Callable[[BaseException], int] | None = None,
                      cleanup: Callable[[], None] | None = None) -> int:
    """Run a command's work; Ctrl-C (exit 130), SIGTERM (143) or an OS error such as a full disk (3) end it
    with one line on stderr instead of a traceback; any other exception goes to `on_error` (which logs it
    and returns its exit status). `cleanup` runs first in every case (it stops worker processes)."""
    install_stop_handlers()
    _received.clear()
    _committed.clear()
    try:
        status = work()
        _raise_if_stopped()
        return status
    except (KeyboardInterrupt, Terminated) as stop:
        _run(cleanup)
        verb = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        where = (f"after {', '.join(map(str, _committed))} had been written" if _committed
                 else f"nothing written; {out_dir} is as it was")
        print(f"{verb}: {where}", file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(stop, KeyboardInterrupt) else EXIT_TERMINATED
    except OSError as err:
        _run(cleanup)
        print(f"error: the run could not be completed ({err.strerror or err}); {out_dir} is as it was",
              file=sys.stderr)
        return EXIT_WRITE_FAILED
    except Exception as err:  # anything else: logged whole, reported in one line
        _run(cleanup)
        if on_error is None:
            raise
        return on_error(err)
    finally:
        _received.clear()
        _committed.clear()


def _run(cleanup) -> None:
    if cleanup is not None:
        try:
            cleanup()
        except Exception:  # cleanup must never hide the reason the run stopped
            pass


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a fresh staging directory beside `target` to fill (holding the `MARKER`); on success it
    replaces `target` in one rename, on any error it vanishes and `target` is as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(target)
    staging = target.with_name(f".{target.name}{STAGING}{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    (staging / MARKER).write_text("an output folder of this tool: a later run may replace it whole (--force)\n")
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


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def temporary_log() -> tempfile._TemporaryFileWrapper:
    return tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
