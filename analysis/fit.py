"""`python -m analysis.fit`: the primary analysis (or any config variant), end to end.

validate config and data → fit → convergence gate → predictive checks → save posterior and summaries.
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

from analysis.config import DEFAULT_CONFIG, PROJECT_ROOT, Config, load_config
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
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> tuple[Config, EvidenceTable, BinomialData]:
    """Everything that can fail because of the user's input, done before any model is built."""
    overrides: dict = {}
    if args.data is not None:
        overrides["data"] = {"path": str(args.data.resolve())}
    if args.seed is not None:
        overrides["sampling"] = {"seed": args.seed}
    config = load_config(args.config, **overrides)
    table, data = config.load()
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
    return run_to_completion(lambda: _run(argv, config, table, data, out_dir, cache, clock, started), out_dir)


def _run(argv: list[str] | None, config: Config, table: EvidenceTable, data: BinomialData, out_dir: Path, cache, clock: Stopwatch,
         started: float) -> int:
    # Heavy imports only once the input is known to be good: bad input fails before any compilation.
    with clock.phase("import"):
        logging.getLogger("pymc").setLevel(logging.WARNING)
        from analysis.borrowing import BorrowingResult, run_borrowing, target_arm
        from analysis.pipeline import run_analysis
        from analysis.sampling import ModelCache
        from analysis.report.writer import write_outputs

    cache = cache if cache is not None else ModelCache()
    clock.attach(cache)
    print(
        f"{config.name}: {config.model.family}, outcome {data.outcome}, drug {data.drug}: "
        f"{len(data)} reports, {int(data.y.sum())} of {int(data.n.sum())} patients",
        file=sys.stderr,
    )
    for warning in data.what_cannot_be_learnt():
        print(f"warning: {warning}", file=sys.stderr)
    with clock.phase("fit"):
        result = run_analysis(config, data, cache, progress=sys.stderr.isatty())
    borrowing = None
    if config.borrowing.enabled:
        target = target_arm(config, table)
        if target is None:
            borrowing = (
                f"no included report of drug '{config.borrowing.target_drug}' has a count in column "
                f"n_{config.data.outcome}; the {config.borrowing.target_drug} arm was not computed"
            )
            print(f"note: {borrowing}", file=sys.stderr)
        else:
            with clock.phase("borrowing"):
                borrowing = run_borrowing(config, result, target, cache)
    summary = write_outputs(result, borrowing, table, out_dir, argv=argv, started=started, timings=clock.seconds())

    pooled, predictive = summary["pooled"], summary["predictive"]
    print(
        f"pooled remission probability {pooled['mean']:.3f} (95% CrI {pooled['ci95'][0]:.3f}-{pooled['ci95'][1]:.3f}); "
        f"new report {predictive['mean']:.3f} (95% CrI {predictive['ci95'][0]:.3f}-{predictive['ci95'][1]:.3f})"
    )
    if isinstance(borrowing, BorrowingResult):
        arm = summary[borrowing.target.drug]
        print(
            f"{arm['target_drug']} ({arm['y']} of {arm['n']}), robust MAP w = {arm['robust_weight']:g}: "
            f"{arm['mean']:.3f} (95% CrI {arm['ci95'][0]:.3f}-{arm['ci95'][1]:.3f}); "
            f"joint model {arm['joint']['mean']:.3f} (95% CrI {arm['joint']['ci95'][0]:.3f}-{arm['joint']['ci95'][1]:.3f})"
        )
    print(f"outputs: {out_dir}")
    if summary["status"] != "passed":
        failures = [("", r) for r in result.convergence.failures]
        if isinstance(borrowing, BorrowingResult):
            failures += [("joint model: ", r) for r in borrowing.joint.convergence.failures]
        for where, reason in failures:
            print(f"convergence check failed: {where}{reason}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
