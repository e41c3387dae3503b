"""`python -m analysis.serve`: a warm process runs the next command as its own process would, serves only a
command with its own sources and environment, and stops a run whose command has gone."""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analysis import cli, warm
from analysis.engine.cache import CACHE_ENV, cache_dir
from analysis.inputs.config import PROJECT_ROOT

READY = re.compile(r"warm process ready \(pid (\d+),")


class Supervisor:
    """`python -m analysis.serve` in a cache folder of its own (sharing the session's compiled programs)."""

    def __init__(self, cache: Path):
        self.env = {k: v for k, v in os.environ.items() if k != "HHD_WARM"} | {CACHE_ENV: str(cache)}
        self.socket = cache / "warm.sock"
        self.process = subprocess.Popen([sys.executable, "-m", "analysis.serve"], cwd=PROJECT_ROOT, env=self.env,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stderr], daemon=True).start()
        self.waiting: int | None = None

    def ready(self, timeout: float = 300) -> int:
        """The pid of the warm process that will run the next command, once it is ready."""
        deadline = time.monotonic() + timeout
        while self.waiting is None:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if match := READY.search(line):
                self.waiting = int(match.group(1))
        return self.waiting

    def command(self, *argv: str, env: dict | None = None, **options) -> subprocess.Popen:
        """The command, which the waiting warm process (if any) takes, or refuses and ends."""
        self.waiting = None
        return subprocess.Popen([sys.executable, "-m", "analysis.fit", *argv], cwd=PROJECT_ROOT,
                                env=env or self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                **options)


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory):
    shared = cache_dir()
    cache = tmp_path_factory.mktemp("warm-cache")
    for folder in ("programs", "xla"):
        (shared / folder).mkdir(parents=True, exist_ok=True)
        (cache / folder).symlink_to(shared / folder)
    running = Supervisor(cache)
    yield running
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=60) == 0
    assert not running.socket.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


def test_the_key_changes_with_any_source_and_with_the_environment_that_shapes_imports(tmp_path, monkeypatch):
    """A warm process never runs a command whose sources differ from those it imported."""
    for folder in ("analysis", "models"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(warm, "PROJECT", tmp_path)
    environ = {"HOME": "/home/a", "LANG": "C"}
    key = warm.worker_key(environ)
    assert warm.worker_key(environ | {"LANG": "de_DE"}) == key  # read by no import
    assert warm.worker_key(environ | {"HHD_WARM": "1"}) == key  # read by the command only
    for changed in ({"XLA_FLAGS": "--xla_cpu_enable_fast_math=true"}, {CACHE_ENV: "/elsewhere"}, {"HOME": "/home/b"}):
        assert warm.worker_key(environ | changed) != key, changed
    template = next((tmp_path / "analysis" / "report").rglob("*.j2"))
    template.write_text(template.read_text() + " ")
    assert warm.worker_key(environ) != key
    assert warm.EXIT_UNEXPECTED == cli.EXIT_UNEXPECTED
    monkeypatch.undo()
    assert warm.PROJECT == PROJECT_ROOT


def test_a_second_supervisor_is_refused_and_its_check_takes_no_warm_process(supervisor):
    pid = supervisor.ready()
    second = subprocess.run([sys.executable, "-m", "analysis.serve"], cwd=PROJECT_ROOT, env=supervisor.env,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert second.stderr == f"error: a warm process is already served at {supervisor.socket}\n"
    time.sleep(3)  # a warm process handed the check would have ended by now (it takes about a second)
    assert _alive(pid) and supervisor.ready() == pid
    assert not any(READY.search(line) for line in list(supervisor.lines.queue)), "another warm process started"


def _stopped_and_gone(supervisor: Supervisor, stop: int, out: Path, busy_input: Path | None = None) -> tuple[int, str]:
    """Start a served command, stop it with `stop` once it has started; check that the warm process running
    it is gone and left nothing. Returns the command's status and what it printed on stderr."""
    pid = supervisor.ready()
    run = supervisor.command("--out", str(out), "--no-sensitivity", "--no-figures")
    first_line = run.stderr.readline()
    assert first_line.startswith("default: "), first_line
    if busy_input is not None:  # a second command meanwhile is told the warm process is busy, and runs here
        busy = supervisor.command("--data", str(busy_input), "--out", str(out.parent / "other"))
        _, said = busy.communicate(timeout=120)
        assert said.startswith("note: the warm process was not used (the warm process is running another"), said
        assert busy.returncode == cli.EXIT_BAD_INPUT
    run.send_signal(stop)
    _, stderr = run.communicate(timeout=120)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "the warm process outlived its command"
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(".partial-")]
    return run.returncode, first_line + stderr


def test_a_killed_command_takes_its_run_with_it_and_a_busy_warm_process_sends_others_home(supervisor, tmp_path):
    """`kill -9` of the command: the warm process running it stops as if terminated and writes nothing (it
    would otherwise finish and write the run). A command that arrives meanwhile runs in its own process."""
    status, _ = _stopped_and_gone(supervisor, signal.SIGKILL, tmp_path / "killed", busy_input=tmp_path / "missing.csv")
    assert status == -signal.SIGKILL


def test_a_command_served_by_the_warm_process_gives_what_its_own_process_gives(supervisor, primary_run, tmp_path):
    """Same numbers as the in-session run (but for the sweep it skips), the same lines on the terminal, and
    the warm process that ran it is gone: the next one is a new process, which will load the programs this
    run used."""
    first = supervisor.ready()
    out = tmp_path / "served"
    run = supervisor.command("--out", str(out), "--no-sensitivity", "--no-figures")
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == cli.EXIT_OK, stderr
    assert all(re.match(r"(default: |warning: |draft: )", line) for line in stderr.splitlines()), stderr
    assert "any response with naltrexone" in stdout and f"outputs: {out}" in stdout
    served = json.loads((out / "summary.json").read_text())
    session = json.loads((primary_run[1] / "summary.json").read_text())
    assert {k: v for k, v in served.items() if k != "sensitivity"} == \
        {k: v for k, v in session.items() if k != "sensitivity"}
    following = supervisor.ready()
    assert following != first and not _alive(first)
    assert json.loads((Path(supervisor.env[CACHE_ENV]) / warm.RECENT).read_text())


@pytest.mark.slow
def test_a_terminated_command_ends_its_run_with_one_line_and_status_143(supervisor, tmp_path):
    out = tmp_path / "terminated"
    status, said = _stopped_and_gone(supervisor, signal.SIGTERM, out)
    assert status == cli.EXIT_TERMINATED
    assert said.splitlines()[1:] == [f"terminated: nothing written; {out} is as it was"], said


@pytest.mark.slow
def test_bad_input_through_the_warm_process_is_one_line_and_status_2(supervisor, tmp_path):
    supervisor.ready()
    run = supervisor.command("--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out"))
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == cli.EXIT_BAD_INPUT
    assert len(stderr.splitlines()) == 1 and stderr.startswith("error: ") and "missing.csv" in stderr, stderr


@pytest.mark.slow
def test_a_command_with_another_environment_runs_in_its_own_process(supervisor, tmp_path):
    """A variable that shapes the imports differs: the warm process refuses, the command says so and runs
    in its own process (here: its bad input, reported as always)."""
    supervisor.ready()
    env = supervisor.env | {"HHD_SOMETHING_ELSE": "1"}
    run = supervisor.command("--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out"), env=env)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == cli.EXIT_BAD_INPUT
    lines = stderr.splitlines()
    assert lines[0].startswith("note: the warm process was not used (its sources, packages or environment differ")
    assert len(lines) == 2 and lines[1].startswith("error: ") and "missing.csv" in lines[1], stderr
