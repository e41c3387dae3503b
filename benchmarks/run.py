"""Benchmarks: print how long the commands take on this machine, and where the time goes.

    .venv/bin/python benchmarks/run.py              # everything (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --skip-sweep --skip-sbc

Measures, with the machine's details:
- cold (empty PyTensor/numba compile caches) and warm wall time of `python -m analysis.fit`, split into
  phases (from the run's run.json; "startup" is the interpreter and the imports before `main` starts);
- effective samples per second of each model (bulk ESS of the slowest population parameter / sampling time);
- the sensitivity sweep's wall time and compilations;
- SBC throughput (simulations per minute) for 200 simulations of the primary model.
Prints figures only: targets are compared, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 45.0, "warm": 20.0, "sbc_200": 180.0}
PHASES = ("startup", "validate", "import", "compile", "sample", "fit", "borrowing", "outputs")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory = re.search(r"MemTotal:\s+(\d+) kB", _read("/proc/meminfo"))
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None,
        "platform": platform.platform(), "python": platform.python_version(),
        **{name: metadata.version(name) for name in ("pymc", "pytensor", "nutpie", "numba", "arviz")},
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def time_fit(out: Path, env: dict | None = None) -> dict:
    """One `python -m analysis.fit` in a fresh process: its wall time and the phases run.json records."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "analysis.fit", "--out", str(out)], cwd=PROJECT_ROOT, check=True,
                   env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    run = json.loads((out / "run.json").read_text())
    return {"wall": wall, "startup": wall - run["wall_time_seconds"], **run["phase_seconds"]}


def effective_samples_per_second() -> list[dict]:
    """Each model structure fitted to the HHD data with the primary sampling settings, in this process."""
    import arviz as az

    from analysis.config import CONFIG_DIR, DEFAULT_CONFIG, load_config
    from analysis.sampling import ModelCache, Seeds
    from models import FAMILIES, joint, model_spec

    rows = []
    for label, path in (("beta-binomial", DEFAULT_CONFIG), ("logit-normal", CONFIG_DIR / "logit_normal.toml")):
        config = load_config(path)
        _, data = config.load()
        family, prior = FAMILIES[config.model.family], config.model.prior
        specs = {label: model_spec(config.model.family, data.y, data.n, prior),
                 f"{label} joint (naloxone 2 of 2, w = 0.2)": joint.model_spec(
                     config.model.family, data.y, data.n, 2, 2, prior, 0.2, (1.0, 1.0))}
        cache = ModelCache()
        for name, spec in specs.items():
            compile_before, sample_before = cache.compile_seconds, cache.sample_seconds
            trace = cache.sample(spec, config.sampling, seed=Seeds(config.sampling.seed).sampler)
            seconds = cache.sample_seconds - sample_before
            ess = az.ess(trace["posterior"].to_dataset()[list(family.hyperparameters)], method="bulk")
            slowest = min(family.hyperparameters, key=lambda v: float(ess[v]))
            rows.append({"model": name, "compile": cache.compile_seconds - compile_before, "sample": seconds,
                         "slowest": slowest, "ess_bulk": float(ess[slowest]),
                         "ess_per_second": float(ess[slowest]) / seconds})
    return rows


def time_command(args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="skip the run with empty compile caches")
    parser.add_argument("--skip-sweep", action="store_true", help="skip the sensitivity sweep (about 3 minutes)")
    parser.add_argument("--skip-sbc", action="store_true", help="skip the SBC throughput run (about 2 minutes)")
    parser.add_argument("--warm-runs", type=int, default=2, help="warm runs of analysis.fit to time (default 2)")
    parser.add_argument("--ess-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ess_only:  # one fresh process per measurement, like the commands themselves
        print(json.dumps(effective_samples_per_second()))
        return 0

    print("machine:", json.dumps(machine()))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="hhd-bench-") as tmp:
        tmp = Path(tmp)
        if not args.skip_cold:
            caches = tmp / "empty-compile-cache"
            # PyTensor keeps its C and numba caches under base_compiledir; numba's own under NUMBA_CACHE_DIR.
            env = {"PYTENSOR_FLAGS": f"base_compiledir={caches}", "NUMBA_CACHE_DIR": str(caches / "numba-own")}
            results["cold"] = time_fit(tmp / "cold", env)
        time_fit(tmp / "warm-up")  # fills the caches a warm run relies on
        for i in range(args.warm_runs):
            results[f"warm {i + 1}"] = time_fit(tmp / f"warm{i}")

        print("\npython -m analysis.fit (default config), seconds")
        print(f"{'run':<8}{'wall':>7}" + "".join(f"{p:>10}" for p in PHASES))
        for name, row in results.items():
            print(f"{name:<8}{row['wall']:>7.1f}" + "".join(f"{row.get(p, float('nan')):>10.1f}" for p in PHASES))
        print("phases: startup = interpreter and light imports; import = model stack; compile and sample = nutpie;\n"
              "fit = derived quantities, predictive checks, diagnostics; borrowing = Beta-mixture fits and the\n"
              "naloxone summaries; outputs = NetCDF, figures, report.")

        print("\neffective samples per second (bulk ESS of the slowest population parameter / sampling time)")
        done = subprocess.run([sys.executable, __file__, "--ess-only"], cwd=PROJECT_ROOT, check=True,
                              capture_output=True, text=True)
        for row in json.loads(done.stdout.strip().splitlines()[-1]):
            print(f"  {row['model']:<48} compile {row['compile']:5.1f} s  sample {row['sample']:5.2f} s  "
                  f"ESS({row['slowest']}) {row['ess_bulk']:7.0f}  -> {row['ess_per_second']:8.0f} per s")

        if not args.skip_sweep:
            seconds, stdout = time_command(["analysis.sensitivity", "--out", str(tmp / "sweep")])
            found = re.search(r"(\d+) variants.*compilations: (\d+)", stdout)
            print(f"\nsensitivity sweep: {found.group(1)} variants, {found.group(2)} compilations, {seconds:.0f} s wall")

        if not args.skip_sbc:
            seconds, _ = time_command(["analysis.validate", "--checks", "beta_binomial", "--simulations", "200",
                                       "--out", str(tmp / "sbc")])
            summary = json.loads((tmp / "sbc" / "summary.json").read_text())
            results["sbc_200"] = {"wall": seconds}
            print(f"\nSBC, primary model, 200 simulations: {seconds:.0f} s wall (fits {summary['fit_seconds']} s, "
                  f"{summary['simulations_per_minute']} simulations per minute, {summary['executor']}, "
                  f"{summary['compilations']} compilations)")

    print("\ntargets (2 cores):")
    warm = [row["wall"] for name, row in results.items() if name.startswith("warm")]
    for name, measured in (("cold", results.get("cold", {}).get("wall")), ("warm", min(warm) if warm else None),
                           ("sbc_200", results.get("sbc_200", {}).get("wall"))):
        if measured is not None:
            verdict = "met" if measured < TARGETS[name] else f"missed by {measured - TARGETS[name]:.0f} s"
            print(f"  {name:<8} {measured:6.1f} s  (target < {TARGETS[name]:.0f} s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
