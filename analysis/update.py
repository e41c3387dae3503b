"""`python -m analysis.update --add NEW.csv`: a signed-off synthesis with new reports added, and what changed.

check the signed-off outputs (summary.json, config.json, never written to), the new rows and the output
folder → the signed-off evidence table with the new rows appended (and their appraisal rows, when the
signed-off run used an appraisal) → the synthesis (`analysis.synthesis`) → the full outputs of a run, the
combined tables (`evidence.csv`, `appraisal.csv`) and the differences from the signed-off summary
(`update.json`, `update.html`; `analysis.report.diff`), written into a staging folder that replaces the
output folder only when complete. Exit statuses: see `analysis.cli`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from analysis.cli import EXIT_GATE_FAILED, EXIT_OK, Parser, RunLog, add_output_options, execute, report_input_error
from analysis.errors import InputError
from analysis.inputs.appraisal import load_appraisal
from analysis.inputs.bundle import Files, Inputs, load_inputs
from analysis.inputs.config import PROJECT_ROOT, Config, display_path
from analysis.inputs.evidence import NUMBER_COLUMNS, EvidenceTable, load_evidence
from analysis.inputs.tables import decimal_comma, number, read_table, row_label
from analysis.outputs import atomic_directory, check_destination, install_stop_handlers
from analysis.processes import exit_at_once, stop_drawing_processes
from analysis.report import diff
from analysis.timing import Stopwatch

SIGNED_OFF = PROJECT_ROOT / "reports" / "default"
DEFAULT_OUT = PROJECT_ROOT / "reports" / "update"
EVIDENCE, APPRAISAL = "evidence.csv", "appraisal.csv"
AGAIN = "sign off again with python -m analysis.fit"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog="python -m analysis.update", description=__doc__.splitlines()[0])
    parser.add_argument("--add", type=Path, required=True,
                        help="the new report(s): rows with the columns of the signed-off evidence table")
    parser.add_argument("--appraisal", type=Path,
                        help="risk-of-bias appraisal rows of the new reports (needed when the signed-off run used "
                             "an appraisal)")
    parser.add_argument("--signed-off", type=Path, default=SIGNED_OFF,
                        help="the signed-off output folder (default: reports/default); it is only read")
    add_output_options(parser, "reports/update", False,
                       "skip the sensitivity sweep (the default: the update is a draft to compare)",
                       "run the sweep (its variants read the combined table without companion files)")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Plan:
    """An update checked before any computation: the combined inputs, the signed-off summary, where it
    writes."""

    inputs: Inputs
    old: dict
    """The signed-off summary.json."""
    signed_off: Path
    added: tuple[str, ...]
    staged: Path
    """A temporary folder holding the combined tables until they are written into `out`."""
    tables: tuple[str, ...]
    overrides: dict
    out: Path
    sensitivity: bool


def prepare(args: argparse.Namespace) -> Plan:
    """Everything that can fail because of the user's input, done before any model is built."""
    signed = Path(args.signed_off).expanduser().resolve()
    old, config = _signed_off(signed, args.signed_off)
    settings = config.data
    evidence = settings.resolved_path()
    table = load_evidence(evidence, outcomes=(settings.outcome,), known_drugs=settings.known_drugs)
    if table.sha256 != old.get("data_sha256"):
        raise InputError(f"{display_path(evidence)}: changed since the signed-off run in {args.signed_off} (its "
                         f"sha256 is not summary.json's data_sha256); {AGAIN}")
    new = load_evidence(args.add, outcomes=(settings.outcome,), known_drugs=settings.known_drugs)
    added = tuple(new.frame["report_id"])
    appraisal = settings.companion(settings.appraisal_path)
    _check_new(args, table, new, appraisal)
    companions = [settings.companion(p) for p in (settings.patients_path, settings.search_path, settings.excluded_path)]
    inputs = [signed, evidence, args.add, appraisal, args.appraisal, *companions]
    out = check_destination(args.out or DEFAULT_OUT, [p for p in inputs if p is not None], PROJECT_ROOT, args.force,
                            default=args.out is None or Path(args.out).resolve() == DEFAULT_OUT)
    if signed in out.parents:
        raise InputError(f"--out {args.out}: is inside the signed-off folder {args.signed_off}, which is never "
                         "written to")
    staged = Path(tempfile.mkdtemp(prefix="hhd-update-"))
    try:
        tables = {EVIDENCE: _appended(evidence, args.add)}
        if appraisal is not None:
            tables[APPRAISAL] = _appended(appraisal, args.appraisal)
        for name, text in tables.items():
            (staged / name).write_text(text, encoding="utf-8")
        combined = _combined(config, staged, out, tables)
        return Plan(combined, old, signed, added, staged, tuple(tables),
                    {"data": combined.config.data.model_dump(mode="json"), "names": config.names.model_dump(),
                     "sampling": {"seed": config.sampling.seed}}, out, args.sensitivity)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def _signed_off(folder: Path, shown: Path) -> tuple[dict, Config]:
    """The signed-off summary and config, or one line saying why they cannot be compared with."""
    if not folder.is_dir():
        raise InputError(f"--signed-off {shown}: no such folder (the output folder of python -m analysis.fit)")
    documents = {}
    for name in ("summary.json", "config.json"):
        path = folder / name
        try:
            documents[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: not found; --signed-off must be the output folder of a run") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"{path}: cannot be read ({err})") from None
    try:
        config = Config.model_validate(documents["config.json"])
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{folder / 'config.json'}: not a config of this version of the tool ({where}: "
                         f"{first['msg']}); {AGAIN}") from None
    try:
        diff.sentences(documents["summary.json"])
    except (KeyError, TypeError, IndexError, AttributeError) as err:
        raise InputError(f"{folder / 'summary.json'}: written by another version of the tool (no {err}); "
                         f"{AGAIN}") from None
    return documents["summary.json"], config


def _check_new(args: argparse.Namespace, table: EvidenceTable, new: EvidenceTable, appraisal: Path | None) -> None:
    """The new rows fit the signed-off table: its columns only, report ids it does not have, and an appraisal
    row for each when the signed-off run used an appraisal."""
    columns = set(read_table(table.path).columns)
    problems = [f"{args.add}: column '{c}' is not a column of the signed-off evidence table {display_path(table.path)}"
                for c in read_table(args.add).columns if c not in columns]
    known = set(table.frame["report_id"])
    ids = list(new.frame["report_id"])
    problems += [f"{row_label(args.add, i, rid)}, column report_id: already in the signed-off evidence table "
                 f"{display_path(table.path)}" for i, rid in enumerate(ids) if rid in known]
    if appraisal is None and args.appraisal is not None:
        problems.append(f"--appraisal {args.appraisal}: the signed-off run used no appraisal")
    elif appraisal is not None and args.appraisal is None:
        problems += [f"{row_label(args.add, i, rid)}, column report_id: the signed-off run used the appraisal "
                     f"{display_path(appraisal)}; give this report's appraisal row with --appraisal FILE"
                     for i, rid in enumerate(ids) if rid not in known]
    if problems:
        raise InputError(problems)
    if appraisal is not None:
        load_appraisal(args.appraisal, ids)


def _appended(signed: Path, new: Path) -> str:
    """The signed-off table's text with the new rows appended (its columns, its delimiter; a cell the new
    table leaves out is blank, a decimal comma of a semicolon-separated new table becomes a point)."""
    old, rows = read_table(signed), read_table(new)
    delimiter = old.attrs.get("delimiter", ",")
    if decimal_comma(rows) and delimiter != ";":
        for column in (c for c in NUMBER_COLUMNS if c in rows):
            rows[column] = [cell if number(cell, False) != "invalid" else f"{number(cell, True):g}"
                            for cell in rows[column]]
    combined = pd.concat([old, rows.reindex(columns=old.columns, fill_value="")], ignore_index=True)
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
    writer.writerow(combined.columns)
    writer.writerows(combined.itertuples(index=False))
    return text.getvalue()


def _combined(config: Config, staged: Path, out: Path, tables: dict[str, str]) -> Inputs:
    """The inputs of the update: the combined tables, read from `staged` but known by the paths they will
    have in `out` (so that summary.json and config.json name the output's own files)."""
    settings, files = config.data, Files()
    evidence = out / EVIDENCE
    table = dataclasses.replace(load_evidence(staged / EVIDENCE, outcomes=(settings.outcome,),
                                              known_drugs=settings.known_drugs), path=evidence)
    files.get("evidence", evidence, lambda: table)
    data = {"path": display_path(evidence)}
    if APPRAISAL in tables:
        appraisal = out / APPRAISAL
        read = dataclasses.replace(load_appraisal(staged / APPRAISAL, table.frame["report_id"]), path=appraisal)
        files.get("appraisal", appraisal, lambda: read)
        data["appraisal_path"] = display_path(appraisal)
    return load_inputs(config.model_copy(update={"data": settings.model_copy(update=data)}), files)


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
    return execute("update", lambda log: _run(args, plan, cache, clock, started, log, argv), plan.out,
                   cleanup=lambda: _cleanup(plan))


def _cleanup(plan: Plan) -> None:
    shutil.rmtree(plan.staged, ignore_errors=True)
    stop_drawing_processes()


def _run(args, plan: Plan, cache, clock: Stopwatch, started: float, log: RunLog, argv) -> int:
    try:
        return _update(args, plan, cache, clock, started, log, argv)
    finally:
        shutil.rmtree(plan.staged, ignore_errors=True)


def _update(args, plan: Plan, cache, clock: Stopwatch, started: float, log: RunLog, argv) -> int:
    inputs, data = plan.inputs, plan.inputs.data
    with clock.phase("import"):  # the heavy imports only once the input is known to be good
        from analysis.engine.executors import process_cache
        from analysis.report import figures, html
        from analysis.report.writer import console_lines, write_run
        from analysis.synthesis import synthesise

        if args.figures:
            figures.start_workers()
    cache = cache if cache is not None else process_cache()
    clock.attach(cache)
    print(f"{inputs.config.name}: {', '.join(plan.added)} added to {display_path(plan.signed_off)}: {len(data)} "
          f"reports, {int(data.y.sum())} of {int(data.n.sum())} patients", file=sys.stderr)
    note = "" if plan.sensitivity else ("an update is a draft to compare with the signed-off run; pass --sensitivity "
                                        "to run it")
    synthesis = synthesise(inputs, cache, clock, plan.sensitivity, note, plan.overrides,
                           plan.staged / EVIDENCE if plan.sensitivity else None)
    with atomic_directory(plan.out) as staging:
        for name in plan.tables:
            shutil.copyfile(plan.staged / name, staging / name)
        summary = write_run(synthesis, staging, svg=False, draw=args.figures, log=log, clock=clock,
                            started=started,
                            command=["python", "-m", "analysis.update", *(sys.argv[1:] if argv is None else argv)],
                            compilations=clock.compilations())
        written = json.loads((staging / "summary.json").read_text(encoding="utf-8"))
        changes = {"signed_off": display_path(plan.signed_off), "new_reports": display_path(args.add),
                   "added": list(plan.added), **diff.compare(plan.old, written)}
        (staging / "update.json").write_text(json.dumps(changes, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        rows = [r for r in summary["evidence_table"] if r["report_id"] in plan.added]
        page = html.render_page("update.html.j2", {"d": changes, "s": summary, "old": plan.old, "rows": rows,
                                                   "shown": diff.shown, "shown_change": diff.shown_change})
        (staging / "update.html").write_text(page, encoding="utf-8")
    for line in console_lines(summary):
        print(line)
    for c in changes["headline"]:
        print(f"  {c['label']}: {diff.shown(c['old'])} -> {diff.shown(c['new'])}")
    for g in changes["grade"]:
        print(f"  GRADE {g['outcome']} {g['domain']}: {g['old']} -> {g['new']}")
    print(f"{len(changes['values'])} values changed; outputs: {plan.out} (update.html)")
    if not synthesis.passed:
        for reason in synthesis.failures:
            print(f"convergence check failed: {reason}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_OK


if __name__ == "__main__":
    exit_at_once(main())
