"""`python -m analysis.serve`: a warm process kept ready for the next `python -m analysis.fit` (optional).

A warm run spends its first seconds importing the stack, loading its compiled programs and starting its
drawing processes. While this command runs (in a second terminal, or in the background), one process is
kept with all of that done; the next `python -m analysis.fit` hands it its arguments, working folder,
environment and terminal (`analysis.warm.delegate`), and that process runs the command as a fresh one
would, then exits. The next one is started when that run has finished, so that its imports never compete
with a run for the cores. Every run has a process of its own: nothing passes from one run to the next.

A warm process serves a command only when their keys are equal (`analysis.warm.worker_key`: the project's
folder and the bytes of every file under `analysis/` and `models/`, the interpreter, the installed
packages, the environment variables that shape imports). Otherwise the command runs in its own process,
as always, and says why; the warm process exits and a new one is started from the current sources. The
command's signals (Ctrl-C, SIGTERM, SIGHUP) are passed on to the process running it, and that process stops
as if interrupted when the command goes away (even by `kill -9`): its outputs are then left as they were.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from analysis.engine.cache import cache_dir
from analysis.warm import EXIT_UNEXPECTED, PROJECT, RECENT, SERVED, receive, send, socket_path, worker_key


ASK_SECONDS = 5.0
"""How long a connection may stay silent before it is dropped (a command sends its request at once)."""


# --- the warm process -----------------------------------------------------------------------------------


def _warm_up() -> None:
    """Import what a run imports, start the drawing processes (the ArviZ one with its imports done) and
    load the programs the last run used."""
    from analysis import fit, synthesis  # noqa: F401 - imported for the run to come
    from analysis.engine.executors import process_cache
    from analysis.report import figures, writer  # noqa: F401

    figures.start_workers(arviz=True)
    try:
        keys = json.loads((cache_dir() / RECENT).read_text())
    except (OSError, ValueError):
        keys = []
    process_cache().load_saved(keys)


def _serve_one(control: socket.socket, key: str) -> int:
    """Wait for one command from the supervisor, run it, report its status; the process then exits."""
    send(control, {"ready": os.getpid()})
    try:
        _, fds, _, _ = socket.recv_fds(control, 1, 1)
    except OSError:
        return 0
    if not fds:  # the supervisor has gone
        return 0
    connection = socket.socket(fileno=fds[0])
    _, streams, _, _ = socket.recv_fds(connection, 1, 3)
    request = receive(connection)
    if request is None or len(streams) != 3:
        return 0
    if request["key"] != key or request["module"] not in SERVED:
        send(connection, {"refused": "its sources, packages or environment differ from this command's"})
        return 0
    for target, stream in enumerate(streams):
        os.dup2(stream, target)
        os.close(stream)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    send(connection, {"pid": os.getpid()})
    threading.Thread(target=_stop_when_gone, args=(connection,), daemon=True).start()
    status = _run(request["module"], request["argv"])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # done: the command closing its end is no stop signal now
    send(connection, {"status": status})
    return status


def _run(module: str, argv: list[str]) -> int:
    import importlib

    from analysis.engine.executors import process_cache

    try:
        return importlib.import_module(module).main(argv, cache=process_cache())
    except SystemExit as stop:  # the options' parser: --help, or a bad option (one line, status 2)
        return stop.code if isinstance(stop.code, int) else 1
    except BrokenPipeError:  # the command's output was closed early (piped into `head`)
        return 1
    except Exception as error:  # noqa: BLE001 - the command's own errors are reported inside `main`
        print(f"error: the warm process failed ({type(error).__name__}: {error})", file=sys.stderr)
        return EXIT_UNEXPECTED


def _stop_when_gone(connection: socket.socket) -> None:
    """The command has gone (finished, or killed even by `kill -9`): stop the run as SIGTERM would, so that
    nothing is left half-written and no process runs for nobody."""
    try:
        while connection.recv(1):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def warm_process_main(control_fd: int) -> None:
    from analysis.processes import exit_at_once

    key = worker_key()  # before the imports: a source changed while they run makes this process stale
    _warm_up()
    status = EXIT_UNEXPECTED
    try:
        status = _serve_one(socket.socket(fileno=control_fd), key)
    finally:  # whatever happened (the command gone before its status was sent): end now, workers too
        exit_at_once(status)


# --- the supervisor ------------------------------------------------------------------------------------


def serve() -> int:
    """Keep one warm process ready until stopped (Ctrl-C or SIGTERM); commands being run go on.

    The next warm process is started when the command before it has finished, so that its imports never
    compete with a run for the cores. A command that arrives while another one runs is told so and runs in
    its own process; one that arrives while the next warm process is starting waits for it (about as long
    as its own imports would take)."""
    path = socket_path()
    if path.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            print(f"error: a warm process is already served at {path}", file=sys.stderr)
            return 2
        except OSError:
            path.unlink()  # left by a supervisor that is gone
        finally:
            probe.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(16)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    warm = control = running = None
    ready = False
    waiting: list[socket.socket] = []
    failures = 0
    try:
        while True:
            if running is not None and running.poll() is not None:
                running = None
            if warm is None and running is None:
                warm, control = _start_warm_process()
                ready, started = False, time.monotonic()
            watched = [listener] + ([control] if warm is not None and not ready else [])
            readable, _, _ = select.select(watched, [], [], 0.25)
            if listener in readable:
                connection, _ = listener.accept()
                if warm is None:
                    send(connection, {"refused": "the warm process is running another command"})
                    connection.close()
                else:
                    waiting.append(connection)
            if control in readable:
                if receive(control) is None:  # it failed while warming up (its error is above)
                    control.close()
                    warm.wait()
                    warm = None
                    failures += 1
                    if failures == 2:
                        print("error: the warm process could not start twice in a row; stopping", file=sys.stderr)
                        return 1
                    time.sleep(1)
                    continue
                ready, failures = True, 0
                print(f"warm process ready (pid {warm.pid}, {time.monotonic() - started:.0f} s) for "
                      f"{', '.join(f'python -m {module}' for module in SERVED)}", file=sys.stderr, flush=True)
            while ready and waiting and not _asking(waiting[0]):
                waiting.pop(0).close()
            if ready and waiting:
                connection = waiting.pop(0)
                socket.send_fds(control, [b"c"], [connection.fileno()])
                connection.close()
                control.close()
                running, warm, ready = warm, None, False
                for other in waiting:  # arrived together: only one can be warm
                    send(other, {"refused": "the warm process is running another command"})
                    other.close()
                waiting.clear()
    except KeyboardInterrupt:
        return 0
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        if warm is not None:  # the waiting process ends when its channel closes (its drawing processes too)
            control.close()
            try:
                warm.wait(timeout=10)
            except subprocess.TimeoutExpired:
                warm.kill()


def _asking(connection: socket.socket) -> bool:
    """Whether a connection brings a command (a command sends at once): one closed without a word, such as
    another supervisor's check that this one is running, takes no warm process."""
    readable, _, _ = select.select([connection], [], [], ASK_SECONDS)
    return bool(readable) and bool(connection.recv(1, socket.MSG_PEEK))


def _start_warm_process() -> tuple[subprocess.Popen, socket.socket]:
    ours, theirs = socket.socketpair()
    process = subprocess.Popen([sys.executable, "-m", "analysis.serve", "--warm-process", str(theirs.fileno())],
                               pass_fds=[theirs.fileno()], cwd=PROJECT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    theirs.close()
    return process, ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--warm-process", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warm_process is not None:
        warm_process_main(args.warm_process)  # never returns: the process ends with its run
    return serve()


if __name__ == "__main__":
    sys.exit(main())
