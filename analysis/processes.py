"""Worker processes that never outlive the run that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A worker's initializer: on Linux the kernel kills this process when its parent dies, even by
    `kill -9`, so no worker is left running (and holding memory) after its run is gone; a worker whose
    parent died while it was still starting exits at once."""
    import multiprocessing
    import os

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # the run died while this worker was starting
        os._exit(1)


def stop_quietly_while_starting() -> None:
    """Ctrl-C or SIGTERM while a command is still importing its libraries: one line and the usual status
    (130, 143), not a traceback. The command installs its own handlers once it has started."""
    import os

    def stop(signum, frame):
        verb, status = ("interrupted", 130) if signum == signal.SIGINT else ("terminated", 143)
        sys.stderr.write(f"{verb}: nothing written\n")
        sys.stderr.flush()
        os._exit(status)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def stop_drawing_processes() -> None:
    """Stop the figure workers if this process started any (the commands import the figures package only
    once they draw, so it is looked up, not imported)."""
    figures = sys.modules.get("analysis.report.figures")
    if figures is not None:
        figures.shutdown()


def exit_at_once(status: int) -> None:
    """End a command's process once its outputs are committed: stop the drawing processes (so that their
    queues are released, not reported as leaked), flush what the command printed and its log handlers, then
    leave without the interpreter's teardown, which takes about a second with JAX, XLA and PyTensor loaded
    and has nothing left to write (every output and log file is already closed)."""
    import logging

    stop_drawing_processes()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
            pass
    logging.shutdown()
    os._exit(status)
