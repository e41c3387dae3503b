"""`python -m analysis.fit`: the primary analysis (or any config variant), end to end.

validate config and data → fit → convergence gate → predictive checks → the naloxone arm, the graded
outcomes, the bias analyses → sensitivity sweep → save posterior, summaries and the reviewer's report.
Exit codes: 0 success; 1 the convergence gate failed (outputs are written and marked failed);
2 bad input (config or data), reported as one line per problem; 3 the outputs could not be written;
130 / 143 interrupted (Ctrl-C / SIGTERM). Only a complete run replaces an earlier output directory.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from analysis.config import DEFAULT_CONFIG, PROJECT_ROOT, Config, load_config, user_data
from analysis.data import BinomialData, EvidenceTable
from analysis.errors import InputError
# The stop statuses (3, 130, 143) are shared by every command; re-exported as this command's.
from analysis.outputs import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_WRITE_FAILED, run_to_completion  # noqa: F401
from analysis.timing import Stopwatch

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m analysis.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="analysis config (TOML)")
    parser.add_argument("--data", type=Path, help="evidence CSV (default: the config's data.path)")
    parser.add_argument("--out", type=Path, help="output directory (default: reports/<config name>)")
    parser.add_argument("--seed", type=int, help="random seed (default: the config's sampling.seed)")
    parser.add_argument("--patients", type=Path, help="per-patient table for --data (default: none with --data)")
    parser.add_argument("--appraisal", type=Path, help="risk-of-bias appraisal for --data (default: none with --data)")
    sweep = parser.add_mutually_exclusive_group()
    sweep.add_argument("--no-sensitivity", dest="sensitivity", action="store_false", default=None,
                       help="skip the sensitivity sweep (a quick draft: the report says so at the top)")
    sweep.add_argument("--sensitivity", dest="sensitivity", action="store_true",
                       help="run the sweep for a config other than the primary one")
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> tuple[Config, EvidenceTable, BinomialData]:
    """Everything that can fail because of the user's input, done before any model is built."""
    overrides: dict = {}
    if args.data is not None:
        overrides["data"] = user_data(args.data)
    for key, path in (("patients_path", args.patients), ("appraisal_path", args.appraisal)):
        if path is not None:
            overrides.setdefault("data", {})[key] = str(path.resolve())
    if args.seed is not None:
        overrides["sampling"] = {"seed": args.seed}
    config = load_config(args.config, **overrides)
    table, data = config.load()
    config.data.load_appraisal(table)  # companion files are validated up front too
    config.data.load_patients(table)
    return config, table, data


def main(argv: list[str] | None = None, cache=None) -> int:
    started = time.perf_counter()
    clock = Stopwatch()
    args = parse_args(argv)
    try:
        with clock.phase("validate"):
            config, table, data = prepare(args)
    except InputError as err:
        for line in err.problems:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out_dir = args.out or PROJECT_ROOT / "reports" / config.name
    return run_to_completion(lambda: _run(argv, config, table, data, out_dir, cache, clock, started, args), out_dir)


def _run(argv: list[str] | None, config: Config, table: EvidenceTable, data: BinomialData, out_dir: Path, cache,
         clock: Stopwatch, started: float, args: argparse.Namespace) -> int:
    # Heavy imports only once the input is known to be good: bad input fails before any compilation.
    with clock.phase("import"):
        logging.getLogger("pymc").setLevel(logging.WARNING)
        from analysis.borrowing import BorrowingResult
        from analysis.executors import process_cache
        from analysis.report.figures import start_worker
        from analysis.report.summary import gate_failures
        from analysis.report.writer import write_outputs
        from analysis.run import run_all

    cache = cache if cache is not None else process_cache()
    clock.attach(cache)
    start_worker()  # the figure worker's imports overlap the sampling
    print(
        f"{config.name}: {config.model.family}, outcome {data.outcome}, drug {data.drug}: "
        f"{len(data)} reports, {int(data.y.sum())} of {int(data.n.sum())} patients",
        file=sys.stderr,
    )
    for warning in data.what_cannot_be_learnt():
        print(f"warning: {warning}", file=sys.stderr)
    primary = Path(config.source).resolve() == DEFAULT_CONFIG.resolve()
    sensitivity = primary if args.sensitivity is None else args.sensitivity
    note = "" if sensitivity else ("--no-sensitivity was given" if args.sensitivity is False else
                                   "the sweep is defined around the primary analysis; pass --sensitivity to run it here")
    run = run_all(config, table, data, cache, clock, sensitivity, note, progress=sys.stderr.isatty(),
                  data_path=args.data)
    for line in ([] if not isinstance(run.borrowing, str) else [run.borrowing]):
        print(f"note: {line}", file=sys.stderr)
    summary = write_outputs(run, out_dir, argv=argv, started=started, timings=clock.seconds(),
                            compilations=clock.compilations())

    pooled, predictive = summary["pooled"], summary["predictive"]
    crude = summary["comparators"]["crude"]
    print(
        f"pooled probability of {data.outcome.replace('_', ' ')} (average report) {pooled['mean']:.3f} "
        f"(95% CrI {pooled['ci95'][0]:.3f}-{pooled['ci95'][1]:.3f}); new report {predictive['mean']:.3f} "
        f"(95% {predictive['ci95'][0]:.3f}-{predictive['ci95'][1]:.3f}); crude {crude['y']} of {crude['n']}"
    )
    for scenario in summary["bias"]["scenarios"]:
        print(f"  if reports with a non-responder were published with relative probability {scenario['weight']:g}: "
              f"{scenario['pooled']['mean']:.3f} (95% CrI {scenario['pooled']['ci95'][0]:.3f}-{scenario['pooled']['ci95'][1]:.3f})")
    if isinstance(run.borrowing, BorrowingResult):
        arm = summary[run.borrowing.target.drug]
        print(
            f"{arm['target_drug']} ({arm['y']} of {arm['n']}; exploratory): unborrowed {arm['unborrowed']['mean']:.3f} "
            f"(95% {arm['unborrowed']['ci95'][0]:.3f}-{arm['unborrowed']['ci95'][1]:.3f}); robust MAP w = "
            f"{arm['robust_weight']:g}: {arm['mean']:.3f} (95% {arm['ci95'][0]:.3f}-{arm['ci95'][1]:.3f}); joint model "
            f"{arm['joint']['mean']:.3f} (95% {arm['joint']['ci95'][0]:.3f}-{arm['joint']['ci95'][1]:.3f})"
        )
    if summary["sensitivity"]["status"] != "run":
        print(f"draft: sensitivity analyses not run ({summary['sensitivity']['note']})", file=sys.stderr)
    print(f"outputs: {out_dir}")
    if summary["status"] != "passed":
        for reason in gate_failures(run):
            print(f"convergence check failed: {reason}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
