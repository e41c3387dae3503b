"""`python -m analysis.validate`: simulation-based calibration of the models and the naloxone route.

check the options, configs, data and output folder → simulate data sets from each check's prior and refit
them (`analysis.steps.calibration`), on this process, local worker processes or a Dask cluster → the PIT
values, uniformity tests, rank-ECDF figures and an index page (`analysis.report.validation`), written
into a staging folder that replaces the output folder only when complete.
Exit statuses: 0 every checked quantity is calibrated, 1 a uniformity test failed (the outputs are
written), and as for `analysis.fit`: 2 bad input, 3 outputs not written, 4 unexpected error, 130/143
interrupted (see `analysis.cli`).
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below, which take a second or more
    from analysis.processes import stop_quietly_while_starting

    stop_quietly_while_starting()

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.cli import EXIT_BAD_INPUT, EXIT_OK, Parser, RunLog, execute, report_input_error, seed
from analysis.errors import InputError
from analysis.inputs.bundle import Files, load_inputs
from analysis.inputs.config import (CONFIG_DIR, DEFAULT_CONFIG, PROJECT_ROOT, CalibrationSettings, Config, load_config,
                                   user_overrides)
from analysis.outputs import atomic_directory, check_destination, install_stop_handlers
from analysis.processes import exit_at_once

if TYPE_CHECKING:  # the sampler stack is imported once the options are parsed (`prepare`), not for --help
    from analysis.engine.executors import Executor
    from analysis.steps.calibration import Check

EXIT_MISCALIBRATED = 1
"""A uniformity test failed: some checked quantity is not calibrated (the outputs say which)."""
__all__ = ["EXIT_OK", "EXIT_MISCALIBRATED", "EXIT_BAD_INPUT", "DEFAULT_CHECKS", "main"]
DEFAULT_OUT = PROJECT_ROOT / "reports" / "validation"


@dataclass(frozen=True)
class CheckSpec:
    name: str
    config_path: Path
    kind: str
    description: str


DEFAULT_CHECKS = (
    CheckSpec("beta_binomial", DEFAULT_CONFIG, "model",
              "primary model (beta-binomial): mu, kappa, theta of two reports"),
    CheckSpec("logit_normal", CONFIG_DIR / "logit_normal.toml", "model",
              "logit-normal model: mu, tau, the pooled mean, theta of the same two reports"),
    CheckSpec("naloxone_two_step", DEFAULT_CONFIG, "two_step",
              "the naloxone arm's route: NUTS, Beta-mixture MAP prior, robustified, updated"),
    CheckSpec("graded_sequential", DEFAULT_CONFIG, "graded",
              "graded outcomes' sequential model: mu and tau of each of the four stages"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    checks = "\n".join(f"  {spec.name:<20} {spec.description}" for spec in DEFAULT_CHECKS)
    parser = Parser(
        prog="python -m analysis.validate", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"The {len(DEFAULT_CHECKS)} checks run by default, each on calibration.simulations (default "
               f"{CalibrationSettings().simulations}) data sets\nsimulated from its prior for reports of the real "
               f"sizes:\n{checks}\n\n"
               "Exit statuses: 0 calibrated, 1 a uniformity test failed, 2 bad input, 3 outputs not written,\n"
               "4 unexpected error, 130/143 interrupted.")
    parser.add_argument("--config", type=Path, help="check this config instead: its model, and its two-step route "
                                                    "when borrowing is on")
    parser.add_argument("--data", type=Path, help="evidence CSV whose report sizes the simulations copy "
                                                  "(default: the config's data.path)")
    parser.add_argument("--simulations", type=int, help="simulations per check (default: calibration.simulations)")
    parser.add_argument("--seed", type=seed, help="random seed, 0 to 2**63-1 (default: the config's sampling.seed)")
    parser.add_argument("--checks", help="comma-separated subset of the checks to run, by name")
    parser.add_argument("--workers", type=int, help="local worker processes (default 1: this process; each fit "
                                                    "spreads its chains over sampling.cores threads)")
    parser.add_argument("--scheduler", help="address of a Dask scheduler to run the fits on instead (tcp://host:port)")
    parser.add_argument("--out", type=Path, help="output folder (default: reports/validation); it belongs to the "
                                                 "tool: a folder that is not a previous output is refused")
    parser.add_argument("--force", action="store_true", help="replace a previous output given with --out")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Plan:
    """A run checked before any computation: its checks, where it writes, what runs the fits."""

    checks: list[Check]
    out: Path
    executor: Executor


def prepare(args: argparse.Namespace) -> Plan:
    """Everything that can fail because of the user's input, done before any model is built."""
    from analysis.engine.executors import make_executor
    from analysis.steps import calibration

    overrides = user_overrides(args.data)
    if args.seed is not None:
        overrides["sampling"] = {"seed": args.seed}
    if args.simulations is not None:
        if args.simulations < 1:
            raise InputError(f"--simulations must be at least 1, not {args.simulations}")
        overrides["calibration"] = {"simulations": args.simulations}
    files = Files()
    checks = [calibration.Check(spec.name, spec.kind, load_inputs(config, files))
              for spec, config in _selected(args, overrides)]
    problems = [line for line in map(calibration.problem, checks) if line is not None]
    if problems:
        raise InputError(problems)
    paths = [path for check in checks for path in check.inputs.paths()]
    out = check_destination(args.out or DEFAULT_OUT, paths, PROJECT_ROOT, args.force,
                            default=args.out is None or Path(args.out).resolve() == DEFAULT_OUT.resolve())
    return Plan(checks, out, make_executor(args.workers, args.scheduler))


def _selected(args: argparse.Namespace, overrides: dict) -> list[tuple[CheckSpec, Config]]:
    """The checks asked for, each with its validated config."""
    if args.config is None:
        specs = list(DEFAULT_CHECKS)
    else:
        config = load_config(args.config, **overrides)
        specs = [CheckSpec(config.name, args.config, "model", "")]
        if config.borrowing.enabled:
            name = f"{config.name}_{config.borrowing.target_drug}_two_step"
            specs.append(CheckSpec(name, args.config, "two_step", ""))
    if args.checks is not None:
        wanted = [name.strip() for name in args.checks.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in {spec.name for spec in specs}]
        if unknown or not wanted:
            what = f"unknown check(s) {', '.join(unknown)}" if unknown else "no check named"
            raise InputError(f"--checks: {what}; available: {', '.join(spec.name for spec in specs)}")
        specs = [spec for spec in specs if spec.name in wanted]
    return [(spec, load_config(spec.config_path, **overrides)) for spec in specs]


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    install_stop_handlers()
    args = parse_args(argv)
    try:
        plan = prepare(args)
    except InputError as err:
        return report_input_error(err)
    return execute("validate", lambda log: _run(plan, started, log, argv), plan.out, cleanup=plan.executor.close)


def _run(plan: Plan, started: float, log: RunLog, argv: list[str] | None) -> int:
    from analysis.report.validation import console_lines, write_validation
    from analysis.steps import calibration

    with plan.executor as executor:
        simulations = [simulation for check in plan.checks for simulation in calibration.simulate(check)]
        fits_started = time.perf_counter()
        rows = executor.map(calibration.fit_simulation, simulations, progress="SBC fits")
        fit_seconds = time.perf_counter() - fits_started
        programs = executor.programs
    result = calibration.summarise(plan.checks, rows)
    run = {"executor": executor.description, "programs": programs, "fit_seconds": round(fit_seconds, 1),
           "simulations_per_minute": round(len(rows) / fit_seconds * 60, 1)}
    with atomic_directory(plan.out) as staging:
        write_validation(result, staging, run, log, started,
                         command=["python", "-m", "analysis.validate", *(sys.argv[1:] if argv is None else argv)])
    for line in console_lines(result):
        print(line)
    print(f"{len(rows)} fits in {fit_seconds:.0f} s ({run['simulations_per_minute']} per minute) on "
          f"{executor.description}, {programs} sampler programs (one per structure and worker); outputs: {plan.out}")
    return EXIT_OK if result.calibrated else EXIT_MISCALIBRATED


if __name__ == "__main__":
    exit_at_once(main())
