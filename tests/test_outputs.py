"""Nothing a user owns is ever destroyed, and nothing half-written is ever left: the output folder belongs
to the tool, is checked before any computation, and is replaced whole or not at all; interrupts, kills,
full disks and unexpected errors end with one line and the documented exit status."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis import cli, fit, outputs
from analysis.inputs.config import PROJECT_ROOT

RUN = [sys.executable, "-m", "analysis.fit"]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path and content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _main(argv: list[str]) -> int:
    try:
        return fit.main(argv)
    except SystemExit as stop:
        return int(stop.code)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# --- where a run may write: refused before any computation -------------------------------------------------


@pytest.fixture
def user_folder(tmp_path) -> Path:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.docx").write_bytes(b"the user's work")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("keep me")
    return folder


def test_an_existing_folder_that_is_not_an_output_is_refused_and_left_alone(user_folder, capsys):
    before = _snapshot(user_folder)
    assert _main(["--out", str(user_folder)]) == cli.EXIT_BAD_INPUT
    assert "is not an output of this tool" in _one_error_line(capsys)
    assert _snapshot(user_folder) == before


def test_the_shipped_data_folder_is_refused(capsys):
    data = PROJECT_ROOT / "data"
    before = _snapshot(data)
    assert _main(["--out", str(data)]) == cli.EXIT_BAD_INPUT
    assert "holds the input" in _one_error_line(capsys)
    assert _snapshot(data) == before


def test_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "results.xlsx"
    target.write_bytes(b"spreadsheet")
    assert _main(["--out", str(target)]) == cli.EXIT_BAD_INPUT
    assert "is a file" in _one_error_line(capsys)
    assert target.read_bytes() == b"spreadsheet"


def test_the_project_root_is_refused(capsys):
    assert _main(["--out", str(PROJECT_ROOT)]) == cli.EXIT_BAD_INPUT
    assert "project root" in _one_error_line(capsys)


def test_a_folder_holding_the_users_data_is_refused(tmp_path, capsys):
    data = tmp_path / "mine" / "reports.csv"
    data.parent.mkdir()
    shutil.copy(PROJECT_ROOT / "data" / "reports.csv", data)
    before = _snapshot(tmp_path)
    assert _main(["--data", str(data), "--out", str(tmp_path)]) == cli.EXIT_BAD_INPUT
    assert "holds the input" in _one_error_line(capsys)
    assert _snapshot(tmp_path) == before


def test_a_previous_output_is_replaced_only_with_force(tmp_path, capsys):
    previous = tmp_path / "run1"
    previous.mkdir()
    (previous / outputs.MARKER).write_text("output\n")
    (previous / "summary.json").write_text("{}")
    assert _main(["--out", str(previous)]) == cli.EXIT_BAD_INPUT
    assert "pass --force" in _one_error_line(capsys)
    checked = outputs.check_destination(previous, [], PROJECT_ROOT, force=True, default=False)
    assert checked == previous.resolve()


def test_no_permission_or_no_room_is_found_before_computing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    assert _main(["--out", str(tmp_path / "new")]) == cli.EXIT_BAD_INPUT
    assert "permission denied" in _one_error_line(capsys)
    monkeypatch.undo()
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 10**6))
    assert _main(["--out", str(tmp_path / "new")]) == cli.EXIT_BAD_INPUT
    assert "MB free" in _one_error_line(capsys)
    assert not (tmp_path / "new").exists()


# --- all or nothing ---------------------------------------------------------------------------------------


def _previous_output(folder: Path) -> dict[str, str]:
    folder.mkdir()
    (folder / outputs.MARKER).write_text("output\n")
    (folder / "summary.json").write_text('{"pooled": 0.87}')
    (folder / "figures").mkdir()
    (folder / "figures" / "forest.png").write_bytes(b"png")
    return _snapshot(folder)


def _partial_folders(folder: Path) -> list[Path]:
    return list(folder.parent.glob(f".{folder.name}{outputs.STAGING}*"))


def test_a_full_disk_while_writing_leaves_the_previous_output_and_no_partial_folder(tmp_path, capsys):
    out = tmp_path / "default"
    before = _previous_output(out)

    def work(log):
        with outputs.atomic_directory(out) as staging:
            (staging / "figures").mkdir()
            (staging / "figures" / "forest.png").write_bytes(b"new")
            raise OSError(errno.ENOSPC, "No space left on device")

    assert cli.execute("test", work, out) == cli.EXIT_WRITE_FAILED
    line = _one_error_line(capsys)
    assert "No space left on device" in line and "is as it was" in line
    assert _snapshot(out) == before and not _partial_folders(out)


def test_a_complete_run_replaces_the_output_whole(tmp_path):
    out = tmp_path / "default"
    _previous_output(out)

    def work(log):
        with outputs.atomic_directory(out) as staging:
            (staging / "summary.json").write_text('{"pooled": 0.9}')
        return cli.EXIT_OK

    assert cli.execute("test", work, out) == cli.EXIT_OK
    assert set(_snapshot(out)) == {outputs.MARKER, "summary.json"} and not _partial_folders(out)


def test_an_unexpected_error_has_its_own_status_one_line_and_the_traceback_in_a_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HHD_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "default"
    before = _previous_output(out)

    def work(log):
        with outputs.atomic_directory(out):
            raise ValueError("a bug")

    assert cli.execute("test", work, out) == cli.EXIT_UNEXPECTED
    line = _one_error_line(capsys)
    assert "ValueError: a bug" in line
    log = Path(line.rsplit("the traceback is in ", 1)[1])
    assert "Traceback" in log.read_text() and log.is_relative_to(tmp_path / "cache")
    assert _snapshot(out) == before and not _partial_folders(out)


def test_a_run_that_fails_after_its_first_figures_were_started_leaves_nothing(tmp_path, monkeypatch, model_cache):
    """The primary fit's figures are drawn while the run goes on; when a later step fails, the workers are
    stopped and a figure never recreates the removed staging folder: no partial folder is left and no
    worker process is left running."""
    from analysis.report import figures
    from analysis.report import writer
    from analysis.steps import evidence

    monkeypatch.setenv("HHD_CACHE_DIR", str(tmp_path / "cache"))
    started = []
    submit = writer.submit_fit_figures
    monkeypatch.setattr(writer, "submit_fit_figures", lambda *a: started.append(1) or submit(*a))

    def fail(*args, **kwargs):
        raise RuntimeError("a step failed")

    monkeypatch.setattr(evidence, "conventional", fail)
    out = tmp_path / "out"
    # Without the graded-outcome model, whose thread would go on computing after the run has failed.
    config = tmp_path / "ungraded.toml"
    config.write_text(f'extends = "{PROJECT_ROOT / "analysis" / "configs" / "default.toml"}"\n[graded]\nenabled = false\n')
    assert fit.main(["--config", str(config), "--out", str(out), "--no-sensitivity"],
                    cache=model_cache) == cli.EXIT_UNEXPECTED
    assert started, "the primary fit's figures were not started before the failure"
    assert not out.exists() and not _partial_folders(out)
    assert not figures._POOLS, "the figure workers were left running"


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    out = tmp_path / "default"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".default{outputs.STAGING}{dead.stdout.strip()}"
    (stale / "figures").mkdir(parents=True)
    alive = tmp_path / f".default{outputs.STAGING}{os.getpid()}"  # a run still going: never touched
    alive.mkdir()
    outputs.clean_stale_staging(out)
    assert not stale.exists() and alive.exists()


# --- stopping -----------------------------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_leaves_no_worker_processes(tmp_path):
    """The figure workers start early; killing the run with SIGKILL takes them with it (PR_SET_PDEATHSIG)."""
    run = subprocess.Popen([*RUN, "--out", str(tmp_path / "out"), "--no-sensitivity"], cwd=PROJECT_ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: len(_children(run.pid)) >= 2, 120), "the figure workers did not start"
        workers = _children(run.pid)
        run.send_signal(signal.SIGKILL)
        run.wait(30)
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 10), "workers outlived the run"
    finally:
        run.kill()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("signum, status, verb, delay", [
    (signal.SIGINT, cli.EXIT_INTERRUPTED, "interrupted", 0.3),  # during start-up, before any import finished
    (signal.SIGTERM, cli.EXIT_TERMINATED, "terminated", None),  # while computing
])
def test_an_interrupt_ends_the_run_quickly_with_one_line(tmp_path, signum, status, verb, delay):
    out = tmp_path / "out"
    before = _previous_output(out)
    run = subprocess.Popen([*RUN, "--out", str(out), "--force", "--no-sensitivity"], cwd=PROJECT_ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if delay is None:  # once the run says what it computes, the heavy work has begun
            assert run.stderr.readline().startswith("default: ")
        else:
            time.sleep(delay)
        sent = time.monotonic()
        run.send_signal(signum)
        _, err = run.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        run.kill()
    assert run.returncode == status
    lines = [line for line in err.splitlines() if not line.startswith(("default: ", "warning: "))]
    assert len(lines) == 1 and lines[0].startswith(f"{verb}: nothing written"), err
    assert took < 10, f"took {took:.1f} s to stop"
    assert _snapshot(out) == before and not _partial_folders(out)
