"""Benchmarks: how long the commands take on this machine and how much memory they use, against the targets.

    .venv/bin/python benchmarks/run.py                          # every case below except suite and sbc
    .venv/bin/python benchmarks/run.py --cases fit_warm,scale_counts --skip-cold
    .venv/bin/python benchmarks/run.py --suite --sbc --json bench.json

Every run is a fresh process, as a user's command is, with its outputs in a temporary folder. Wall and CPU
time and peak memory are measured from outside; the phases come from the run's own `run.json`. The
figures are printed, never asserted: they depend on the machine and on what else it runs, so the machine,
its load average before and after each run and the package versions are printed with them.

Cache states (`HHD_CACHE_DIR`, and PyTensor's compile folder with it):
  cold   an empty cache for each run: a new machine's first run, every program compiled;
  warm   the benchmark's cache (`--cache`, default a temporary folder), after an untimed warm-up run
         whenever a run still had to build a program;
  first  the benchmark's cache as the earlier cases left it: a user's first run on a data set of a new
         size after `make setup`; the programs of that size are built in the run (column `built`);
  user   the user's own caches, as `make test` uses them (the test suite);
  served the benchmark's cache with `python -m analysis.serve` running: each run is handed to a warm process
         (imports done, the last run's programs loaded), started once the run before it had finished; an
         untimed run first, so that the warm processes know the programs to load. Wall is the command's;
         cpu and memory are the command's own process only (the warm process that runs it is not its child).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks import data as simulated  # noqa: E402 - needs the project root on the path when run as a script

GB = 1e9
PACKAGES = ("pymc", "pytensor", "jax", "jaxlib", "blackjax", "arviz-base", "arviz-stats", "numpy", "scipy",
            "matplotlib")
PHASES = ("startup", "validate", "import", "compile", "sample", "fit", "borrowing", "graded", "cumulative",
          "sensitivity", "outputs")
PHASE_NOTES = """\
wall, cpu: the whole process tree (cpu = user + system of the run and the workers it waited for);
startup: wall less the run's own clock (the interpreter and imports before it starts, and the exit after
  run.json is written); compile, sample: building or loading sampler programs, running them (every model and
  variant); validate: reading the data; import: the model stack; fit, borrowing, graded, cumulative,
  sensitivity: those steps' own work (derived quantities, checks, refits' bookkeeping); outputs: files,
  figures, report; mem: peak resident memory of the process tree, sampled every 0.2 s, or of its largest
  process (exact, getrusage) when that is higher; built: programs compiled (not loaded from the cache)."""


@dataclass(frozen=True)
class Case:
    """One benchmarked command: what it runs, on which data, from which cache state, against which target."""

    name: str
    description: str
    command: tuple[str, ...]
    state: str
    seconds: float
    memory_gb: float | None = None
    data: str | None = None
    """None (the shipped data), or a simulated table: "reports:<number>" or "counts:<number of reports>"."""
    optional: bool = False
    """Run only when asked for by name or by its option (--suite, --sbc)."""
    primer: tuple[str, ...] | None = None
    """A cheaper command that builds the same programs: the warm-up of a command that does not count its builds."""
    writes_outputs: bool = True
    """Takes `--out` and writes a `run.json` there (the tool's commands; not the test suite)."""


FIT = ("-m", "analysis.fit")
CASES = {case.name: case for case in (
    Case("fit_warm", "shipped data, --no-sensitivity", (*FIT, "--no-sensitivity"), "warm", 8),
    Case("fit_cold", "shipped data, --no-sensitivity", (*FIT, "--no-sensitivity"), "cold", 20),
    Case("fit_served", "shipped data, --no-sensitivity, through a warm process", (*FIT, "--no-sensitivity"),
         "served", 8),
    Case("full_warm", "shipped data, the default command", FIT, "warm", 20),
    Case("full_served", "shipped data, the default command, through a warm process", FIT, "served", 20),
    Case("full_cold", "shipped data, the default command", FIT, "cold", 60),
    Case("scale_500", "500 simulated reports, the default command", FIT, "first", 180, 4, "reports:500"),
    Case("scale_5000", "5,000 simulated reports, --no-sensitivity", (*FIT, "--no-sensitivity"), "first", 300, 8,
         "reports:5000"),
    Case("scale_counts", "12 simulated reports of 0.5-1 million patients, --no-sensitivity",
         (*FIT, "--no-sensitivity"), "first", 60, None, "counts:12"),
    Case("suite", "the default test suite (make test)", ("-m", "pytest", "-q", "-p", "no:cacheprovider"), "user",
         300, optional=True, writes_outputs=False),
    Case("sbc", "SBC of the primary model, 200 simulations",
         ("-m", "analysis.validate", "--simulations", "200", "--checks", "beta_binomial"), "warm", 60,
         optional=True, primer=("-m", "analysis.validate", "--simulations", "2", "--checks", "beta_binomial")),
)}


@dataclass
class Run:
    """One measured process."""

    label: str
    status: int
    wall: float
    cpu: float
    peak_tree_bytes: int
    peak_process_bytes: int
    load_before: float
    load_after: float
    phases: dict[str, float] = field(default_factory=dict)
    built: int | None = None
    note: str = ""
    details: list[str] = field(default_factory=list)
    """The end of a failed run's output and of the traceback in its log."""

    @property
    def peak_bytes(self) -> int:
        return max(self.peak_tree_bytes, self.peak_process_bytes)

    @property
    def ok(self) -> bool:
        return self.status in (0, 1)  # 1: the convergence gate failed, but the run completed and wrote outputs


# ---------------------------------------------------------------------------------------------------------
# measuring one process


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
    except OSError:
        pass
    return found


def tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants now (0 where /proc is unavailable)."""
    page, total, stack, seen = os.sysconf("SC_PAGE_SIZE"), 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(_children(pid))
    return total


def measure(argv: list[str], env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT,
            timeout: float | None = None, log: Path | None = None, interval: float = 0.2) -> dict:
    """Run a command to its end: exit status, wall and CPU seconds, peak memory of its tree and of its
    largest process. Output goes to `log` (or nowhere). On timeout the whole process group is killed."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT if log else out,
                               start_new_session=True)
    peak, done, killed = [0], threading.Event(), threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(process.pid))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def expire() -> None:
        killed.set()
        _kill_group(process.pid)

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer:
        timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        wall = time.perf_counter() - started
        done.set()
        if timer:
            timer.cancel()
        sampler.join()
        if log:
            out.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    _kill_group(process.pid)  # workers a killed run left behind
    return {"status": process.returncode, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_tree_bytes": peak[0], "peak_process_bytes": usage.ru_maxrss * 1024,
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "timed_out": killed.is_set()}


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------------------------------------
# the cases


def prepare_data(spec: str | None, folder: Path) -> Path | None:
    """The simulated evidence table a case names, written once into `folder`."""
    if spec is None:
        return None
    kind, number = spec.split(":")
    path = folder / f"{kind}-{number}.csv"
    if not path.exists():
        simulated.write_csv(path, simulated.simulate(int(number), large_counts=kind == "counts"))
    return path


def cache_env(cache: Path, own_pytensor: bool = True) -> dict[str, str]:
    """The environment of a run on this cache; PyTensor's compile folder inside it unless the user's own."""
    env = {**os.environ, "HHD_CACHE_DIR": str(cache)}
    if own_pytensor:
        flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("base_compiledir=")]
        env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={cache / 'pytensor'}"])
    return env


def command_line(case: Case, out: Path, data: Path | None) -> list[str]:
    argv = [sys.executable, *case.command]
    if data is not None:
        argv += ["--data", str(data)]
    if case.writes_outputs:
        argv += ["--out", str(out)]
    return argv


def read_run(out: Path) -> tuple[dict[str, float], int | None, str]:
    """Phases, programs built and a note from a run's `run.json` (empty when it wrote none)."""
    try:
        run = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return {}, None, ""
    phases = dict(run.get("phase_seconds", {}))
    if "wall_time_seconds" in run:
        phases["_own_wall"] = run["wall_time_seconds"]
    note = ""
    if "fit_seconds" in run:
        note = (f"fits {run['fit_seconds']} s, {run.get('simulations_per_minute')} simulations per minute, "
                f"{run.get('programs')} programs, {run.get('executor')}")
    return phases, run.get("compilations"), note


def run_once(case: Case, label: str, work: Path, cache: Path | None, own_pytensor: bool, data: Path | None,
             timeout: float | None, command: tuple[str, ...] | None = None) -> Run:
    """One run of the case's command (or of `command`) on `cache` (None: the user's own caches)."""
    out = work / f"{case.name}-{label.replace(' ', '')}"
    shutil.rmtree(out, ignore_errors=True)
    log = work / f"{out.name}.log"
    env = cache_env(cache, own_pytensor) if cache is not None else dict(os.environ)
    argv = command_line(replace(case, command=command or case.command), out, data)
    measured = measure(argv, env, timeout=timeout, log=log)
    phases, built, note = read_run(out)
    own = phases.pop("_own_wall", None)
    if own is not None:
        phases["startup"] = measured["wall"] - own
    details = []
    if measured["timed_out"] or measured["status"] not in (0, 1):
        note = (f"killed after the {timeout:.0f} s timeout" if measured["timed_out"]
                else f"failed with exit status {measured['status']}")
        details = _failure_details(log)
    elif not case.writes_outputs:
        note = " ".join(_tail(log, 1))
    shutil.rmtree(out, ignore_errors=True)
    return Run(label, measured["status"], measured["wall"], measured["cpu"], measured["peak_tree_bytes"],
               measured["peak_process_bytes"], measured["load_before"], measured["load_after"], phases, built, note,
               details)


def _failure_details(output: Path, lines: int = 12) -> list[str]:
    """The end of the run's own output and of the tool's log it names (read now: a cold cache is deleted)."""
    details = [f"output: {line}" for line in _tail(output, lines)]
    named = re.search(r"the traceback is in (\S+\.log)", output.read_text(errors="replace") if output.exists() else "")
    if named:
        details += [f"log {named.group(1)}:"] + [f"  {line}" for line in _tail(Path(named.group(1)), lines)]
    return details


def _tail(path: Path, lines: int) -> list[str]:
    try:
        return [line.rstrip() for line in path.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    except OSError:
        return []


def run_case(case: Case, work: Path, warm_cache: Path, own_pytensor: bool, repeat: int, timeout: float | None,
             progress: Callable[[str], None] = print) -> list[Run]:
    """The timed runs of a case, and before them the untimed warm-ups a warm case needed (labelled so).

    A warm run is one that built no program: a run that still built one is a warm-up and is repeated
    (twice at most). A case whose runs do not count their builds has a cheaper `primer` command instead."""
    data = prepare_data(case.data, work / "data")
    if case.state == "served":
        with WarmProcesses(cache_env(warm_cache, own_pytensor), work / f"{case.name}-serve.log") as warm:
            return _served_runs(case, work, warm, warm_cache, own_pytensor, repeat, timeout, data, progress)
    runs: list[Run] = []
    if case.state == "warm" and case.primer:
        runs.append(run_once(case, "warm-up", work, warm_cache, own_pytensor, data, timeout, command=case.primer))
        progress(_progress_line(case, runs[-1]))
    i, warmups = 1, 0
    while i <= repeat:
        if case.state == "cold":
            cache = Path(tempfile.mkdtemp(prefix="cold-", dir=work))
            run = run_once(case, f"cold {i}", work, cache, True, data, timeout)
            shutil.rmtree(cache, ignore_errors=True)
        else:
            cache = None if case.state == "user" else warm_cache
            label = "first" if case.state == "first" and i == 1 else f"{'warm' if case.state == 'first' else case.state} {i}"
            run = run_once(case, label, work, cache, own_pytensor, data, timeout)
        if case.state == "warm" and run.ok and run.built and warmups < 2:
            warmups += 1
            run.label = f"warm-up {warmups}"
        else:
            i += 1
        runs.append(run)
        progress(_progress_line(case, run))
    return runs


class WarmProcesses:
    """`python -m analysis.serve` on the benchmark's cache, for the served cases."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log

    def __enter__(self) -> WarmProcesses:
        with self.log.open("w") as log:  # the supervisor keeps its own copy of the handle
            self.process = subprocess.Popen([sys.executable, "-m", "analysis.serve"], cwd=PROJECT_ROOT,
                                            env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        return self

    def wait_ready(self, count: int, timeout: float = 600) -> None:
        """Until the supervisor has reported `count` warm processes ready in all."""
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count("warm process ready") < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"python -m analysis.serve: no warm process ready ({self.log})")
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _served_runs(case: Case, work: Path, warm: WarmProcesses, cache: Path, own_pytensor: bool, repeat: int,
                 timeout: float | None, data: Path | None, progress: Callable[[str], None]) -> list[Run]:
    """An untimed run, then `repeat` timed ones, each handed to a warm process that is ready."""
    runs = []
    for i in range(repeat + 1):
        warm.wait_ready(i + 1)
        run = run_once(case, f"served {i}" if i else "warm-up 1", work, cache, own_pytensor, data, timeout)
        runs.append(run)
        progress(_progress_line(case, run))
    return runs


def _progress_line(case: Case, run: Run) -> str:
    built = "" if run.built is None else f", built {run.built}"
    return (f"  {case.name} {run.label}: {run.wall:.1f} s wall, {run.cpu:.1f} s cpu, "
            f"{run.peak_bytes / GB:.2f} GB{built} (load {run.load_before:.1f} → {run.load_after:.1f})"
            + (f"  {run.note}" if run.note else ""))


# ---------------------------------------------------------------------------------------------------------
# results


def timed(case: Case, runs: Iterable[Run]) -> list[Run]:
    """The runs in the cache state the case names (not the warm-ups, nor the later runs of a "first" case)."""
    return [r for r in runs if r.label.split()[0] == case.state]


def verdict(case: Case, runs: list[Run]) -> dict:
    """The case against its targets: the fastest completed run in its state, the highest memory of those."""
    done = [r for r in timed(case, runs) if r.ok]
    if not done:
        last = timed(case, runs)[-1:] or runs[-1:]
        return {"case": case.name, "seconds": None, "memory_gb": None, "met": False,
                "text": "no completed run" + (f": {last[0].note}" if last else "")}
    seconds = min(r.wall for r in done)
    memory = max(r.peak_bytes for r in done) / GB
    met_time = seconds < case.seconds
    met_memory = case.memory_gb is None or memory < case.memory_gb
    text = f"{seconds:6.1f} s  target < {case.seconds:.0f} s  {_met(met_time, seconds - case.seconds, 's')}"
    if case.memory_gb is not None:
        text += f";  {memory:5.2f} GB  target < {case.memory_gb:.0f} GB  {_met(met_memory, memory - case.memory_gb, 'GB')}"
    return {"case": case.name, "seconds": round(seconds, 2), "memory_gb": round(memory, 3),
            "met": met_time and met_memory, "text": text}


def _met(met: bool, excess: float, unit: str) -> str:
    return "met" if met else f"missed by {excess:.1f} {unit}" if unit == "GB" else f"missed by {excess:.0f} {unit}"


def format_case(case: Case, runs: list[Run]) -> str:
    """A case's table: one row per run, with the phases any of its runs reported."""
    known = [p for p in PHASES if any(p in r.phases for r in runs)]
    extra = sorted({p for r in runs for p in r.phases} - set(PHASES))
    phases = known + extra
    header = f"{'run':<11}{'wall':>8}{'cpu':>8}" + "".join(f"{p[:10]:>11}" for p in phases) + f"{'mem GB':>8}{'built':>6}  load"
    lines = [f"{case.name}: {case.description} ({case.state})", header]
    for run in runs:
        built = "" if run.built is None else str(run.built)
        lines.append(f"{run.label:<11}{run.wall:>8.1f}{run.cpu:>8.1f}"
                     + "".join(f"{run.phases[p]:>11.1f}" if p in run.phases else f"{'':>11}" for p in phases)
                     + f"{run.peak_bytes / GB:>8.2f}{built:>6}  {run.load_before:.1f}→{run.load_after:.1f}"
                     + (f"  {run.note}" if run.note else ""))
        lines += [f"    {line}" for line in run.details]
    lines.append(f"  → {verdict(case, runs)['text']}")
    return "\n".join(lines)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory = re.search(r"MemTotal:\s+(\d+) kB", _read("/proc/meminfo"))
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gb": round(int(memory.group(1)) * 1024 / GB, 1) if memory else None,
            "load_average": [round(x, 2) for x in os.getloadavg()], "platform": platform.platform(),
            "python": platform.python_version(), "packages": versions}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def format_machine(info: dict) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)
    load = " ".join(f"{x:.2f}" for x in info["load_average"])
    return (f"machine: {info['cores']} cores ({info['cpu']}), {info['memory_gb']} GB, load average {load}\n"
            f"         Python {info['python']}, {info['platform']}\n         {packages}")


# ---------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = ", ".join(CASES)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="cases:\n" + "\n".join(
                                         f"  {c.name:<13}{c.description} ({c.state}); target < {c.seconds:.0f} s"
                                         + (f", < {c.memory_gb:.0f} GB" if c.memory_gb else "")
                                         + (" [only when named or with its option]" if c.optional else "")
                                         for c in CASES.values()))
    parser.add_argument("--cases", help=f"comma-separated cases to run (default: all but suite and sbc): {names}")
    parser.add_argument("--skip-cold", action="store_true", help="leave out the cases with empty caches")
    parser.add_argument("--suite", action="store_true", help="also time the default test suite")
    parser.add_argument("--sbc", action="store_true", help="also time 200 SBC simulations of the primary model")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per case (the fastest is compared)")
    parser.add_argument("--cache", type=Path, help="the warm cache to use (default: a temporary folder; give "
                                                   "~/.cache/hhd-opioid-antagonists to use the one `make setup` filled)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds after which a run is killed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    chosen = args.cases.split(",") if args.cases else [c.name for c in CASES.values() if not c.optional]
    chosen = [name.strip() for name in chosen if name.strip()]
    unknown = [name for name in chosen if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; the cases are {names}")
    chosen += [name for name, flag in (("suite", args.suite), ("sbc", args.sbc)) if flag and name not in chosen]
    if args.skip_cold:
        chosen = [name for name in chosen if CASES[name].state != "cold"]
    args.cases = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(format_machine(info), flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="hhd-bench-") as tmp:
        work = Path(tmp)
        warm_cache = args.cache.expanduser() if args.cache else work / "cache"
        for name in args.cases:
            case = CASES[name]
            print(f"\n{case.name}: {case.description} ({case.state}) ...", flush=True)
            runs = run_case(case, work, warm_cache, args.cache is None, args.repeat, args.timeout,
                            progress=lambda line: print(line, flush=True))
            print(format_case(case, runs), flush=True)
            results[name] = {"case": {k: v for k, v in vars(case).items() if k != "command"},
                             "command": " ".join(["python", *case.command]),
                             "runs": [{**vars(r), "peak_bytes": r.peak_bytes} for r in runs],
                             "verdict": verdict(case, runs)}
    print("\n" + PHASE_NOTES)
    print("\ntargets (2 cores; the fastest completed run, the highest memory):")
    for name, result in results.items():
        print(f"  {name:<13}{result['verdict']['text']}")
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in info['load_average_after'])}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
