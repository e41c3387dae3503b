"""`python -m analysis.validate`: simulation-based calibration of the models and the naloxone route.

By default three checks, each with `calibration.simulations` simulated data sets shaped like the real
evidence: the primary beta-binomial model, the logit-normal model, and the naloxone two-step route
(see `analysis.calibration`). `--config` checks another config instead (its model, and its two-step
route when borrowing is on). Writes PIT values, the uniformity tests, rank ECDF plots with simultaneous
bands and an index page to reports/validation/. Exit codes: 0 calibrated; 1 a uniformity test failed;
2 bad input; 3, 130, 143 as for `analysis.fit` (stopped; earlier outputs left as they were).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.config import CONFIG_DIR, DEFAULT_CONFIG, PROJECT_ROOT, Config, display_path, load_config, user_data
from analysis.errors import InputError
from analysis.outputs import run_to_completion

EXIT_OK, EXIT_MISCALIBRATED, EXIT_BAD_INPUT = 0, 1, 2


@dataclass(frozen=True)
class CheckSpec:
    name: str
    config_path: Path
    kind: str


DEFAULT_CHECKS = (
    CheckSpec("beta_binomial", DEFAULT_CONFIG, "model"),
    CheckSpec("logit_normal", CONFIG_DIR / "logit_normal.toml", "model"),
    CheckSpec("naloxone_two_step", DEFAULT_CONFIG, "two_step"),
    CheckSpec("graded_sequential", DEFAULT_CONFIG, "graded"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m analysis.validate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="check this config (default: the three standard checks)")
    parser.add_argument("--data", type=Path, help="evidence CSV whose report sizes the simulations copy")
    parser.add_argument("--simulations", type=int, help="simulations per check (default: calibration.simulations)")
    parser.add_argument("--seed", type=int, help="random seed (default: the config's sampling.seed)")
    parser.add_argument("--checks", help="comma-separated subset of the checks to run, by name")
    parser.add_argument("--workers", type=int, help="local worker processes (default 1: this process; each fit uses sampling.cores threads)")
    parser.add_argument("--scheduler", help="address of a Dask scheduler to run the fits on instead (tcp://host:port)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "validation", help="output directory")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> list[tuple[CheckSpec, Config]]:
    """The checks to run, each with its validated config (everything a user can get wrong, up front)."""
    if args.config is not None:
        config = load_config(args.config)
        specs = [CheckSpec(config.name, args.config, "model")]
        if config.borrowing.enabled:
            specs.append(CheckSpec(f"{config.name}_{config.borrowing.target_drug}_two_step", args.config, "two_step"))
    else:
        specs = list(DEFAULT_CHECKS)
    if args.checks:
        wanted = [c.strip() for c in args.checks.split(",") if c.strip()]
        unknown = sorted(set(wanted) - {s.name for s in specs})
        if unknown:
            raise InputError(f"--checks: unknown check(s) {', '.join(unknown)}; available: "
                             f"{', '.join(s.name for s in specs)}")
        specs = [s for s in specs if s.name in wanted]
    overrides: dict = {}
    if args.data is not None:
        overrides["data"] = user_data(args.data)
    if args.seed is not None:
        overrides["sampling"] = {"seed": args.seed}
    if args.simulations is not None:
        overrides["calibration"] = {"simulations": args.simulations}
    return [(spec, load_config(spec.config_path, **overrides)) for spec in specs]


def build_simulations(spec: CheckSpec, config: Config) -> list:
    from analysis.borrowing import target_arm
    from analysis.calibration import simulate

    table, data = config.load()
    if spec.kind == "graded":
        from analysis.calibration import simulate_graded
        from analysis.graded import graded_counts

        report_ids, pattern, n = graded_counts(config, table)
        return simulate_graded(spec.name, config, report_ids, pattern, n)
    target_n = 0
    if spec.kind == "two_step":
        target = target_arm(config, table)
        if target is None:
            raise InputError(f"{display_path(table.path)}: no report of the target drug "
                             f"'{config.borrowing.target_drug}' to shape the two-step check")
        target_n = target.n
    return simulate(spec.name, spec.kind, config, data, target_n=target_n)


def run_checks(checks: list[tuple[CheckSpec, Config]], executor) -> tuple:
    """All simulations of all checks as one batch of tasks (workers stay busy across checks)."""
    import pandas as pd

    from analysis.calibration import fit_simulation, uniformity

    simulations = [s for spec, config in checks for s in build_simulations(spec, config)]
    started = time.perf_counter()
    rows = executor.map(fit_simulation, simulations, progress="SBC fits")
    seconds = time.perf_counter() - started
    table = pd.DataFrame(rows)
    alpha = min(config.calibration.alpha for _, config in checks)
    return table, uniformity(table, alpha), seconds


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    try:
        checks = plan(args)
        logging.getLogger("pymc").setLevel(logging.WARNING)
        from analysis.executors import make_executor

        executor = make_executor(args.workers, args.scheduler)
    except InputError as err:
        for line in err.problems:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT

    return run_to_completion(lambda: _run(argv, args, checks, executor, started), args.out)


def _run(argv: list[str] | None, args: argparse.Namespace, checks: list[tuple[CheckSpec, Config]], executor, started: float) -> int:
    from analysis.report.validation_page import write_validation

    with executor:
        try:
            table, tests, fit_seconds = run_checks(checks, executor)
        except InputError as err:
            for line in err.problems:
                print(f"error: {line}", file=sys.stderr)
            return EXIT_BAD_INPUT
        programs = executor.programs
    seconds = time.perf_counter() - started
    meta = {
        "checks": {spec.name: {"config": display_path(config.source), "kind": spec.kind,
                               "model": config.model.family, "simulations": config.calibration.simulations,
                               "settings": config.calibration.model_dump(), "chains": config.sampling.chains,
                               "seed": config.sampling.seed}
                   for spec, config in checks},
        "executor": executor.description, "programs": programs,
        "wall_time_seconds": round(seconds, 1), "fit_seconds": round(fit_seconds, 1),
        "simulations_per_minute": round(len(table) / fit_seconds * 60, 1),
        "command": " ".join(["python -m analysis.validate", *(sys.argv[1:] if argv is None else argv)]),
    }
    write_validation(table, tests, meta, args.out)
    calibrated = bool(tests["calibrated"].all())
    for _, row in tests.iterrows():
        print(f"{row['check']:>20} {row['quantity']:<28} p = {row['p_value']:.3f} "
              f"{'inside' if row['inside_band'] else 'OUTSIDE'} the 95% band  "
              f"{'ok' if row['calibrated'] else 'NOT CALIBRATED'}")
    print(f"{len(table)} fits in {fit_seconds:.0f} s ({meta['simulations_per_minute']} per minute) on "
          f"{executor.description}, {programs} sampler programs (one per structure and worker); {int((~table['converged']).sum())} fits failed "
          f"the convergence checks; outputs: {args.out}")
    return EXIT_OK if calibrated else EXIT_MISCALIBRATED


if __name__ == "__main__":
    sys.exit(main())
