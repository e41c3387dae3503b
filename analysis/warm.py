"""The command's side of `python -m analysis.serve`: ask the warm process to run this command.

`delegate` is called by a command before it imports anything heavy (this module imports only the standard
library and the cache's location); `worker_key` says which commands a warm process may run; the protocol
is a line of JSON each way over a Unix socket in the cache, the command's terminal passed as file
descriptors. `HHD_WARM=0` makes a command run in its own process even when a warm one is ready. See
`analysis.serve` for the warm process and the supervisor that keeps one ready.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import sysconfig
from pathlib import Path

from analysis.engine.cache import cache_dir

PROJECT = Path(__file__).resolve().parents[1]
"""`analysis.inputs.config.PROJECT_ROOT` (a test checks they agree; not imported: this module stays light)."""
SERVED = ("analysis.fit",)
"""The commands a warm process runs."""
KEY_ENVIRONMENT = ("HHD_", "JAX_", "XLA_", "PYTHON", "OMP_", "MKL_", "OPENBLAS_", "MPL", "XDG_CACHE_HOME", "HOME")
"""Environment variables (by prefix) read while the stack is imported: a command whose values differ is not
served by a process that was started with others."""
RECENT = "recent-programs.json"
"""In the cache: the compiled programs the last run used, which the next warm process loads before it is
needed."""
EXIT_UNEXPECTED = 4
"""`analysis.cli.EXIT_UNEXPECTED` (a test checks they agree; not imported: this module stays light)."""


def socket_path() -> Path:
    return cache_dir() / "warm.sock"


def worker_key(environ: dict[str, str] | None = None) -> str:
    """What a warm process must share with the command it runs: the project's folder and the bytes of every
    file under `analysis/` and `models/` (so that it never runs changed sources), the interpreter, the
    installed packages and the environment variables read while the stack is imported. About 20 ms."""
    environ = os.environ if environ is None else environ
    digest = hashlib.sha256()
    digest.update(f"{PROJECT}\0{sys.executable}\0{sys.version}\0".encode())
    packages = Path(sysconfig.get_paths()["purelib"])
    digest.update("\0".join(sorted(p.name for p in packages.glob("*.dist-info"))).encode())
    for name in sorted(environ):
        if name.startswith(KEY_ENVIRONMENT) and name != "HHD_WARM":
            digest.update(f"{name}={environ[name]}\0".encode())
    for folder in ("analysis", "models"):
        for path in sorted((PROJECT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(PROJECT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:32]


# --- the command's side ---------------------------------------------------------------------------------


def delegate(module: str, argv: list[str]) -> int | None:
    """Run `module`'s command in a warm process and return its exit status; None when no warm process may
    run it (none is ready, `HHD_WARM=0`, or its key differs: the command then runs in its own process)."""
    path = socket_path()
    if os.environ.get("HHD_WARM") == "0" or module not in SERVED or not path.exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:  # a socket left by a server that is gone
        connection.close()
        return None
    with connection:
        mask = os.umask(0)
        os.umask(mask)
        request = {"key": worker_key(), "module": module, "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                   "umask": mask}
        try:
            socket.send_fds(connection, [b"r"], [0, 1, 2])
            send(connection, request)
        except OSError:  # refused before it was asked (busy): the reason is there to read
            pass
        reply = receive(connection)
        if reply is None or "refused" in reply:
            reason = "it stopped" if reply is None else reply["refused"]
            print(f"note: the warm process was not used ({reason}); running in this process", file=sys.stderr)
            return None
        pid = reply["pid"]
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda number, frame: _forward(pid, number))
        outcome = receive(connection)
    if outcome is None:
        print(f"error: the warm process running the command (pid {pid}) ended without an exit status",
              file=sys.stderr)
        return EXIT_UNEXPECTED
    return outcome["status"]


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def send(connection: socket.socket, message: dict) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


def receive(connection: socket.socket) -> dict | None:
    """One message (a line of JSON), or None when the other side closed first."""
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = connection.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def remember_programs(keys: list[str]) -> None:
    """Record the programs a run used, for the next warm process to load (atomically; best effort)."""
    target = cache_dir() / RECENT
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{RECENT}.{os.getpid()}")
        temporary.write_text(json.dumps(sorted(keys)))
        os.replace(temporary, target)
    except OSError:
        pass
