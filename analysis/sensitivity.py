"""`python -m analysis.sensitivity`: the sensitivity sweep alone, on a page of its own.

check the options, config, data and output folder → the analyses the sweep starts from (primary,
publication bias, the target arm, power-scaling) → the sweep (`analysis.steps.sweep`), its config variants
spread over this process, local worker processes (--workers) or a Dask cluster (--scheduler) → the outputs
(`analysis.report.sensitivity`), written into a staging folder that replaces the output folder only when
complete. `python -m analysis.fit` runs the same sweep inside the full report; this command reruns it
alone, on as many machines as there are.
Exit statuses: see `analysis.cli` (1: the primary analysis, the joint target-arm model or a variant failed
its convergence checks; the outputs are written and show it).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.cli import EXIT_GATE_FAILED, EXIT_OK, Parser, RunLog, execute, report_input_error, seed
from analysis.engine.executors import Executor, InProcessExecutor, make_executor
from analysis.errors import InputError
from analysis.inputs.bundle import Inputs, load_inputs
from analysis.inputs.config import CONFIG_DIR, DEFAULT_CONFIG, PROJECT_ROOT, display_path, load_config, user_overrides
from analysis.outputs import atomic_directory, check_destination, install_stop_handlers
from analysis.processes import exit_at_once, stop_drawing_processes

DEFAULT_OUT = PROJECT_ROOT / "reports" / "sensitivity"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(
        prog="python -m analysis.sensitivity", description=__doc__.splitlines()[0],
        epilog="Writes sensitivity.html, sensitivity.csv, sensitivity.json, figures/ and run.log. Exit status: 0 "
               "done, 1 a convergence check failed, 2 bad input, 3 not written, 4 unexpected error, 130/143 "
               "interrupted.")
    parser.add_argument("--config", type=Path, metavar="FILE", default=DEFAULT_CONFIG,
                        help="the analysis the variants are compared with (default: the primary, default.toml)")
    parser.add_argument("--data", type=Path, metavar="FILE",
                        help="evidence CSV for the analysis and every variant (default: the config's data.path)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output folder (default: reports/sensitivity for the primary config, "
                             "reports/<config name>-sensitivity for another); it belongs to the tool: a folder "
                             "that is not a previous output is refused")
    parser.add_argument("--force", action="store_true", help="replace a previous output given with --out")
    parser.add_argument("--seed", type=seed, metavar="N",
                        help="random seed, 0 to 2**63-1 (default: the config's sampling.seed)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="local worker processes for the variants (default: this process, the variants in "
                            "sampling.cores threads, as python -m analysis.fit runs them)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="address of a Dask scheduler to run the variants on instead (e.g. tcp://host:8786; "
                            "needs pip install -e '.[dask]')")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Plan:
    """A run checked before any computation: its inputs, where it writes, where its variants run."""

    inputs: Inputs
    out: Path
    executor: Executor


def prepare(args: argparse.Namespace) -> Plan:
    """Everything that can fail because of the user's input, done before any model is built; the executor
    last, so that nothing is left to close when an earlier check fails."""
    overrides = user_overrides(args.data)
    if args.seed is not None:
        overrides["sampling"] = {"seed": args.seed}
    inputs = load_inputs(load_config(args.config, **overrides))
    primary = Path(args.config).resolve() == DEFAULT_CONFIG.resolve()
    default_out = DEFAULT_OUT if primary else PROJECT_ROOT / "reports" / f"{inputs.config.name}-sensitivity"
    read = [Path(args.config), CONFIG_DIR, *(Path(path) for _, path in inputs.files.read)]
    out = check_destination(args.out or default_out, read, PROJECT_ROOT, args.force,
                            default=args.out is None or Path(args.out).resolve() == default_out.resolve())
    if args.workers is None and args.scheduler is None:  # as in the full report: variants in the run's threads
        return Plan(inputs, out, InProcessExecutor(threads=inputs.config.sampling.cores))
    return Plan(inputs, out, make_executor(args.workers, args.scheduler))


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    install_stop_handlers()
    args = parse_args(argv)
    try:
        plan = prepare(args)
    except InputError as err:
        return report_input_error(err)
    command = shlex.join(["python", "-m", "analysis.sensitivity", *(sys.argv[1:] if argv is None else argv)])
    return execute("sensitivity", lambda log: _run(args, plan, command, started, log), plan.out,
                   cleanup=lambda: _stop(plan.executor))


def _stop(executor: Executor) -> None:
    executor.close()
    stop_drawing_processes()


def _run(args: argparse.Namespace, plan: Plan, command: str, started: float, log: RunLog) -> int:
    from analysis.engine.executors import process_cache
    from analysis.report import figures
    from analysis.report import sensitivity as outputs

    figures.start_workers()  # their imports overlap the computation
    inputs, executor = plan.inputs, plan.executor
    data = inputs.data
    print(f"{inputs.config.name}: {inputs.config.model.family}, outcome {data.outcome}, drug {data.drug}: "
          f"{len(data)} reports, {int(data.y.sum())} of {int(data.n.sum())} patients; variants on "
          f"{executor.description}", file=sys.stderr)
    with executor:
        table, arm = compute(inputs, process_cache(), executor, args.data)
        programs = executor.programs
    failures = [f"{r.variant}: {r.error}" for r in table.variants if r.status == "failed"]
    if arm is not None:
        failures += [f"joint model: {f}" for f in arm.joint_convergence.failures]
    document = outputs.document(_identity(inputs), table)
    with atomic_directory(plan.out) as staging:
        outputs.write_outputs(staging, document, command, failures)
        (staging / "run.log").write_text(log.text(), encoding="utf-8")
    not_run = [r for r in table.variants if r.status == "not run"]
    print(f"{len(table.variants)} rows, {len(failures)} failed, {len(not_run)} not run; sampler programs "
          f"prepared: {programs}; wall time {time.perf_counter() - started:.0f} s")
    for row in not_run:
        print(f"not run: {row.variant}: {row.error}", file=sys.stderr)
    print(f"outputs: {plan.out}")
    if failures:
        for reason in failures:
            print(f"convergence check failed: {reason}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_OK


def compute(inputs: Inputs, cache, executor: Executor, data_path: Path | None):
    """The sweep and the target arm it used: the steps it starts from, wired as `analysis.synthesis` wires
    them, then the variants on `executor`."""
    from analysis.steps import borrowing, primary, psense, publication, sweep

    config = inputs.config
    main = primary.analyse(inputs, cache)
    bias = publication.analyse(inputs, main, cache) if main.exact is not None else None
    arm = None
    if config.borrowing.enabled and main.exact is not None:
        target = inputs.target(config.borrowing.target_drug)
        if borrowing.why_not(inputs, int(target.y.sum()) if len(target) else None) is None:
            arm = borrowing.analyse(inputs, main, cache)
    rows, _ = psense.analyse(config, main)
    return sweep.sweep(inputs, main, bias, arm, cache, executor, data_path, rows), arm


def _identity(inputs: Inputs) -> dict:
    """The run's identity, under the keys summary.json gives it."""
    config = inputs.config
    return {"config": config.name, "config_file": config.source, "description": config.description,
            "data_file": display_path(inputs.table.path), "data_sha256": inputs.table.sha256,
            "outcome": config.data.outcome, "drug": config.data.drug, "condition": inputs.condition,
            "model": config.model.family, "seed": config.sampling.seed,
            "target_drug": config.borrowing.target_drug if config.borrowing.enabled else None}


if __name__ == "__main__":
    exit_at_once(main())
