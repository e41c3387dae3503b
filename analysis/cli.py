"""What every command shares: its exit statuses, its stderr (one line per problem, third-party warnings into
the run's log instead), and the log file that keeps the traceback of an unexpected error.

    0  success
    1  the convergence gate failed (the outputs are written and marked failed)
    2  bad input: config, data, options or output folder (one line per problem, before any computation)
    3  the outputs could not be written (disk full, permissions); the previous output is as it was
    4  an unexpected error: one line on stderr, the traceback in the log file it names
  130  interrupted (Ctrl-C), 143 terminated (SIGTERM); the previous output is as it was
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from analysis.errors import InputError
from analysis.inputs.config import MAX_SEED
from analysis.outputs import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_WRITE_FAILED, run_to_completion

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_UNEXPECTED = 0, 1, 2, 4
__all__ = ["Parser", "add_output_options", "EXIT_OK", "EXIT_GATE_FAILED", "EXIT_BAD_INPUT", "EXIT_WRITE_FAILED", "EXIT_UNEXPECTED",
           "EXIT_INTERRUPTED", "EXIT_TERMINATED", "RunLog", "seed", "report_input_error", "execute"]


class Parser(argparse.ArgumentParser):
    """argparse with a bad option reported like any bad input: one line, exit 2 (no usage block)."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def add_output_options(parser: argparse.ArgumentParser, default_out: str, sweep_default: bool | None,
                       no_sweep: str, sweep: str) -> None:
    """--out, --force, --no-figures and the --no-sensitivity/--sensitivity switch, worded alike in every
    command that writes a synthesis."""
    parser.add_argument("--out", type=Path, help=f"output folder (default: {default_out}); it belongs to the tool: a "
                                                 "folder that is not a previous output is refused")
    parser.add_argument("--force", action="store_true", help="replace a previous output given with --out")
    parser.add_argument("--no-figures", dest="figures", action="store_false",
                        help="draw no figure: a quicker draft with the same numbers, whose pages say it has none")
    switch = parser.add_mutually_exclusive_group()
    switch.add_argument("--no-sensitivity", dest="sensitivity", action="store_false", default=sweep_default,
                        help=no_sweep)
    switch.add_argument("--sensitivity", dest="sensitivity", action="store_true", help=sweep)


def seed(text: str) -> int:
    """An argparse type: a seed the samplers accept (0 to 2**63 - 1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is outside 0 to 2**63 - 1")
    return value


def report_input_error(err: InputError) -> int:
    for line in err.problems:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_BAD_INPUT


class RunLog:
    """The run's log: third-party warnings and log records, and the traceback of an unexpected error.

    It is written to a file in the tool's cache folder (`logs/`), and its text is copied into the outputs
    as `run.log`; nothing from it reaches stderr except this module's one-line messages."""

    def __init__(self, command: str) -> None:
        from analysis.engine.cache import cache_dir  # a light module: no sampler stack at import

        folder = cache_dir() / "logs"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.path: Path | None = folder / f"{command}-{stamp}-{os.getpid()}.log"
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in `close`
        except OSError:
            self.path, self._file = None, None
        self._lines: list[str] = []
        self._handler = _ListHandler(self)
        self._previous_showwarning = warnings.showwarning

    def write(self, text: str) -> None:
        self._lines.append(text)
        if self._file is not None:
            self._file.write(text + "\n")
            self._file.flush()

    def text(self) -> str:
        return "\n".join(self._lines) + ("\n" if self._lines else "")

    def __enter__(self) -> RunLog:
        def showwarning(message, category, filename, lineno, file=None, line=None):
            self.write(f"warning: {category.__name__}: {message} ({filename}:{lineno})")

        warnings.showwarning = showwarning
        root = logging.getLogger()
        root.addHandler(self._handler)
        root.setLevel(logging.INFO)
        for name in ("pymc", "pytensor", "jax", "arviz", "matplotlib"):
            named = logging.getLogger(name)
            named.handlers.clear()
            named.propagate = True
        return self

    def __exit__(self, *exc) -> None:
        warnings.showwarning = self._previous_showwarning
        logging.getLogger().removeHandler(self._handler)
        if self._file is not None:
            self._file.close()

    def unexpected(self, error: BaseException) -> int:
        """Keep the traceback in the log; one line on stderr naming the log."""
        self.write("".join(traceback.format_exception(error)))
        where = f"; the traceback is in {self.path}" if self.path else ""
        print(f"error: unexpected failure ({type(error).__name__}: {_first_line(error)}){where}", file=sys.stderr)
        return EXIT_UNEXPECTED


class _ListHandler(logging.Handler):
    def __init__(self, log: RunLog) -> None:
        super().__init__(logging.INFO)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._log.write(f"{record.levelname.lower()}: {record.name}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - logging must never stop a run
            pass


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def execute(command: str, work: Callable[[RunLog], int], out_dir: Path, cleanup: Callable[[], None] | None = None
            ) -> int:
    """Run a command's work (given the run's log) with the exit statuses above."""
    with RunLog(command) as log:
        return run_to_completion(lambda: work(log), out_dir, on_error=log.unexpected, cleanup=cleanup)
