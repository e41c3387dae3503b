"""`python -m analysis.fit`: the primary analysis (or any config variant), end to end.

check the options, config, data and output folder → the synthesis (`analysis.synthesis`) → the outputs,
written into a staging folder that replaces the output folder only when complete (`analysis.report.writer`).
Exit statuses: see `analysis.cli` (0 success, 1 convergence gate failed, 2 bad input, 3 outputs not
written, 4 unexpected error, 130/143 interrupted).
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below, which take a second or more
    import sys

    from analysis.processes import stop_quietly_while_starting
    from analysis.warm import delegate

    stop_quietly_while_starting()
    served = delegate("analysis.fit", sys.argv[1:])  # a warm process, when `python -m analysis.serve` keeps one
    if served is not None:
        sys.exit(served)

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.cli import (EXIT_GATE_FAILED, EXIT_OK, Parser, RunLog, add_output_options, execute,
                          report_input_error, seed)
from analysis.errors import InputError
from analysis.inputs.bundle import Inputs, load_inputs
from analysis.inputs.config import DEFAULT_CONFIG, PROJECT_ROOT, load_config, user_overrides
from analysis.outputs import atomic_directory, check_destination, install_stop_handlers
from analysis.processes import exit_at_once, stop_drawing_processes
from analysis.timing import Stopwatch
from analysis.warm import remember_programs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog="python -m analysis.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="analysis config (TOML)")
    parser.add_argument("--data", type=Path, help="evidence CSV (default: the config's data.path)")
    parser.add_argument("--patients", type=Path, help="per-patient table for --data (default: none with --data)")
    parser.add_argument("--appraisal", type=Path, help="risk-of-bias appraisal for --data (default: none with --data)")
    parser.add_argument("--condition", help="the condition's name in the report (default: the config's names."
                                            "condition, else the data's condition column)")
    parser.add_argument("--seed", type=seed, help="random seed, 0 to 2**63-1 (default: the config's sampling.seed)")
    parser.add_argument("--svg", action="store_true", help="also write every figure as SVG (figures/*.svg)")
    add_output_options(parser, "reports/<config name>", None,
                       "skip the sensitivity sweep (a quick draft: the report says so at the top)",
                       "run the sweep for a config other than the primary one")
    args = parser.parse_args(argv)
    if args.svg and not args.figures:
        parser.error("--svg asks for figures that --no-figures leaves out")
    return args


@dataclass(frozen=True)
class Plan:
    """A run checked before any computation: its inputs, where it writes, whether it sweeps."""

    inputs: Inputs
    overrides: dict
    out: Path
    sensitivity: bool
    note: str


def prepare(args: argparse.Namespace) -> Plan:
    """Everything that can fail because of the user's input, done before any model is built."""
    overrides = user_overrides(args.data)
    for key, path in (("patients_path", args.patients), ("appraisal_path", args.appraisal)):
        if path is not None:
            overrides.setdefault("data", {})[key] = str(path.resolve())
    if args.condition is not None:
        overrides.setdefault("names", {})["condition"] = args.condition
    if args.seed is not None:
        overrides["sampling"] = {"seed": args.seed}
    config = load_config(args.config, **overrides)
    inputs = load_inputs(config)
    default_out = PROJECT_ROOT / "reports" / config.name
    out = check_destination(args.out or default_out, inputs.paths(), PROJECT_ROOT, args.force,
                            default=args.out is None or Path(args.out).resolve() == default_out.resolve())
    primary = (PROJECT_ROOT / config.source).resolve() == DEFAULT_CONFIG.resolve()
    sensitivity = primary if args.sensitivity is None else args.sensitivity
    note = "" if sensitivity else ("--no-sensitivity was given" if args.sensitivity is False else
                                   "the sweep is defined around the primary analysis; pass --sensitivity to run it here")
    return Plan(inputs, overrides, out, sensitivity, note)


def main(argv: list[str] | None = None, cache=None) -> int:
    started = time.perf_counter()
    install_stop_handlers()
    args = parse_args(argv)
    clock = Stopwatch()
    try:
        with clock.phase("validate"):
            plan = prepare(args)
    except InputError as err:
        return report_input_error(err)
    return execute("fit", lambda log: _run(args, plan, cache, clock, started, log, argv), plan.out,
                   cleanup=stop_drawing_processes)


def _run(args, plan: Plan, cache, clock: Stopwatch, started: float, log: RunLog, argv) -> int:
    inputs, data = plan.inputs, plan.inputs.data
    with clock.phase("import"):  # the heavy imports only once the input is known to be good
        from analysis.engine.executors import process_cache
        from analysis.report import figures
        from analysis.report.writer import console_lines, submit_fit_figures, write_run
        from analysis.synthesis import synthesise

        if args.figures:
            figures.start_workers()  # their imports overlap the computation
    cache = cache if cache is not None else process_cache()
    clock.attach(cache)
    print(f"{inputs.config.name}: {inputs.config.model.family}, outcome {data.outcome}, drug {data.drug}: "
          f"{len(data)} reports, {int(data.y.sum())} of {int(data.n.sum())} patients", file=sys.stderr)
    for warning in data.what_cannot_be_learnt():
        print(f"warning: {warning}", file=sys.stderr)
    with atomic_directory(plan.out) as staging:
        drawings = []
        on_primary = (lambda result: drawings.append(submit_fit_figures(result, staging, args.svg))) if args.figures \
            else None
        try:
            synthesis = synthesise(inputs, cache, clock, plan.sensitivity, plan.note, plan.overrides, args.data,
                                   on_primary=on_primary)
            summary = write_run(synthesis, staging, svg=args.svg, draw=args.figures, log=log, clock=clock,
                                started=started,
                                command=["python", "-m", "analysis.fit", *(sys.argv[1:] if argv is None else argv)],
                                compilations=clock.compilations(), drawing=drawings[0] if drawings else None)
        except BaseException:
            stop_drawing_processes()  # no figure may be left drawing into the folder that is about to go
            raise
    remember_programs(cache.used)
    for line in console_lines(summary):
        print(line)
    if summary["sensitivity"]["status"] != "run":
        print(f"draft: sensitivity analyses not run ({summary['sensitivity']['note']})", file=sys.stderr)
    print(f"outputs: {plan.out}")
    if not synthesis.passed:
        for reason in synthesis.failures:
            print(f"convergence check failed: {reason}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_OK


if __name__ == "__main__":
    exit_at_once(main())
