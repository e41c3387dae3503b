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


def _raise_terminated(signum, frame):
    raise Terminated()


def run_to_completion(work: Callable[[], int], out_dir: Path) -> int:
    """Run a command's work; Ctrl-C (exit 130), SIGTERM (143) or an OS error such as a full disk (3) end it
    with one line on stderr instead of a traceback. Outputs go through `atomic_directory`, so `out_dir`
    is then exactly as it was."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return work()
    except KeyboardInterrupt:
        print(f"interrupted: nothing written; {out_dir} is as it was", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"terminated: nothing written; {out_dir} is as it was", file=sys.stderr)
        return EXIT_TERMINATED
    except OSError as err:
        print(f"error: the run could not be completed ({err}); {out_dir} is as it was", file=sys.stderr)
        return EXIT_WRITE_FAILED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


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
    if target.exists():
        previous = target.with_name(f".{target.name}.previous-{os.getpid()}")
        os.replace(target, previous)
    os.replace(staging, target)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
