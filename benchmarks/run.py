"""Benchmarks: how long the commands take on this machine, phase by phase, against the targets.

    .venv/bin/python benchmarks/run.py                   # both commands cold and warm, SBC (about 10 minutes)
    .venv/bin/python benchmarks/run.py --skip-cold --skip-sbc
    .venv/bin/python benchmarks/run.py --suite           # also time the default test suite

"Cold" is a fresh machine: an empty sampler cache (`HHD_CACHE_DIR`) and an empty PyTensor compile
directory. "Warm" is a later run of the same command (the cache filled by the run before). Every run is a
new process, like the statistician's. Phases come from the run's `run.json`; "startup" is the
interpreter and the imports before the command starts its clock. Prints figures only: the targets are
compared, never asserted (timing depends on the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"fit": ["--no-sensitivity"], "full": []}
"""The two commands: the fit alone (a draft report) and the default command (everything)."""
TARGETS = {("fit", "warm"): 12.0, ("fit", "cold"): 25.0, ("full", "warm"): 30.0, ("full", "cold"): 90.0,
           ("suite", "warm"): 300.0, ("sbc_200", "warm"): 60.0}
"""Seconds on 2 cores (the performance issue's targets)."""
PHASES = ("startup", "validate", "import", "compile", "sample", "fit", "borrowing", "graded", "cumulative",
          "sensitivity", "outputs")
PHASE_NOTES = """phases: startup = interpreter and imports before the clock starts; validate = reading the data;
import = model stack; compile = building or loading sampler programs; sample = running them (every model and
variant); fit, borrowing, graded, cumulative, sensitivity = the work of those steps other than compiling and
sampling (derived quantities, checks, exact LOO refits' bookkeeping, EM, psense); outputs = NetCDF, summaries,
figures, report."""


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory = re.search(r"MemTotal:\s+(\d+) kB", _read("/proc/meminfo"))
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None,
        "platform": platform.platform(), "python": platform.python_version(),
        **{name: metadata.version(name) for name in ("pymc", "pytensor", "jax", "blackjax", "arviz")},
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def time_fit(args: list[str], out: Path, env: dict) -> dict:
    """One `python -m analysis.fit` in a fresh process: wall time, phases and programs built."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "analysis.fit", *args, "--out", str(out)], cwd=PROJECT_ROOT, check=True,
                   env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    run = json.loads((out / "run.json").read_text())
    return {"wall": wall, "startup": wall - run["wall_time_seconds"], **run["phase_seconds"],
            "built": run.get("compilations", 0)}


def time_command(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, check=True, env={**os.environ, **env},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def verdict(measured: float, target: float) -> str:
    ratio = measured / target
    return f"{ratio:4.2f} x target ({'met' if measured < target else f'missed by {measured - target:.0f} s'})"


def print_table(rows: dict[tuple[str, str], dict]) -> None:
    print(f"\n{'command':<6}{'run':<7}{'wall':>7}" + "".join(f"{p[:9]:>10}" for p in PHASES) + f"{'built':>7}")
    for (command, state), row in rows.items():
        print(f"{command:<6}{state:<7}{row['wall']:>7.1f}"
              + "".join(f"{row.get(p, float('nan')):>10.1f}" for p in PHASES) + f"{row['built']:>7d}")
    print(PHASE_NOTES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="skip the runs with empty caches")
    parser.add_argument("--skip-sbc", action="store_true", help="skip the SBC throughput run (200 simulations)")
    parser.add_argument("--suite", action="store_true", help="also time the default test suite")
    parser.add_argument("--warm-runs", type=int, default=2, help="warm runs of each command (the fastest is compared)")
    args = parser.parse_args(argv)

    print("machine:", json.dumps(machine()))
    rows: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="hhd-bench-") as tmp:
        tmp = Path(tmp)
        caches = tmp / "cache"
        env = {"HHD_CACHE_DIR": str(caches / "hhd"), "PYTENSOR_FLAGS": f"base_compiledir={caches / 'pytensor'}"}
        for command, options in COMMANDS.items():
            if not args.skip_cold:
                shutil.rmtree(caches, ignore_errors=True)  # each command's cold run starts from empty caches
                rows[command, "cold"] = time_fit(options, tmp / f"{command}-cold", env)
        for command, options in COMMANDS.items():
            time_fit(options, tmp / f"{command}-warm-up", env)  # fills the caches the warm runs rely on
            for i in range(args.warm_runs):
                rows[command, f"warm {i + 1}"] = time_fit(options, tmp / f"{command}-warm{i}", env)
        print_table(rows)

        measured = {}
        for (command, state), row in rows.items():
            key = (command, "cold" if state == "cold" else "warm")
            measured[key] = min(measured.get(key, float("inf")), row["wall"])
        if not args.skip_sbc:
            measured["sbc_200", "warm"] = time_command(
                ["-m", "analysis.validate", "--checks", "beta_binomial", "--simulations", "200",
                 "--out", str(tmp / "sbc")], env)
            summary = json.loads((tmp / "sbc" / "summary.json").read_text())
            print(f"\nSBC, primary model, 200 simulations: {measured['sbc_200', 'warm']:.0f} s wall "
                  f"(fits {summary['fit_seconds']} s, {summary['simulations_per_minute']} per minute, "
                  f"{summary['executor']}, {summary['programs']} programs)")
        if args.suite:
            measured["suite", "warm"] = time_command(["-m", "pytest", "-q", "-p", "no:cacheprovider"], env)
            print(f"\ndefault test suite: {measured['suite', 'warm']:.0f} s wall")

    print("\ntargets (2 cores; warm = the fastest warm run):")
    for key, seconds in measured.items():
        print(f"  {key[0]:<8}{key[1]:<6}{seconds:7.1f} s   target < {TARGETS[key]:4.0f} s   {verdict(seconds, TARGETS[key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
