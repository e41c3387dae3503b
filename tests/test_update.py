"""`python -m analysis.update`: a signed-off run with new reports added. The reference is the cumulative
analysis: signing off the shipped data without the last year's report(s) and adding them reproduces the
cumulative analysis's final step. Bad input ends in one line before any computation, and the signed-off
folder is never written to."""

import contextlib
import csv
import hashlib
import io
import json

import pytest

from analysis import fit, update
from analysis.cli import EXIT_BAD_INPUT, EXIT_OK
from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import PROJECT_ROOT, load_config
from analysis.report.format import format_number
from analysis.steps import cumulative

QUICK = """extends = "{default}"
[graded]
enabled = false
"""
"""The default analysis without the graded-outcome model (the slowest fit, which the update does not need)."""


def _hashes(folder) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _write(path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, model_cache):
    """The shipped evidence without the reports of the cumulative analysis's last year, signed off by
    `fit`; then `update` with those reports (neither draws figures: no test here reads one)."""
    folder = tmp_path_factory.mktemp("update")
    final = cumulative.analyse(load_inputs(load_config()), model_cache).steps[-1]
    last = final.added
    with open(PROJECT_ROOT / "data" / "reports.csv", newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    at = header.index("report_id")
    _write(folder / "signed.csv", header, [r for r in rows if r[at] not in last])
    _write(folder / "new.csv", header, [r for r in rows if r[at] in last])
    (folder / "quick.toml").write_text(QUICK.format(default=PROJECT_ROOT / "analysis" / "configs" / "default.toml"))
    signed = folder / "signed"
    assert fit.main(["--config", str(folder / "quick.toml"), "--data", str(folder / "signed.csv"), "--out", str(signed),
                     "--no-sensitivity", "--no-figures"], cache=model_cache) == EXIT_OK
    before = _hashes(signed)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = update.main(["--add", str(folder / "new.csv"), "--signed-off", str(signed), "--out",
                            str(folder / "updated"), "--no-figures"], cache=model_cache)
    return {"folder": folder, "signed": signed, "before": before, "last": last, "final": final, "code": code,
            "out": folder / "updated", "stdout": out.getvalue(), "stderr": err.getvalue()}


def test_the_update_lists_what_changed(runs):
    assert runs["code"] == EXIT_OK, runs["stderr"]
    out = runs["out"]
    changes = json.loads((out / "update.json").read_text(encoding="utf-8"))
    old = json.loads((runs["signed"] / "summary.json").read_text(encoding="utf-8"))
    new = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert changes["added"] == list(runs["last"]) and changes["reports"]["added"] == list(runs["last"])
    pooled = next(c for c in changes["headline"] if c["key"] == "pooled.mean")
    assert (pooled["old"], pooled["new"]) == (old["pooled"]["mean"], new["pooled"]["mean"]) != (pooled["old"],) * 2
    prisma = {p["key"]: p for p in changes["prisma"]}
    added = len(runs["last"])
    assert prisma["included_reports.naltrexone"]["change"] == added and prisma["included_reports.naltrexone"]["changed"]
    assert prisma["in_table"]["new"] == prisma["in_table"]["old"] + added
    page = (out / "update.html").read_text(encoding="utf-8")
    assert "pooled.mean" in page and "included_reports.naltrexone" in page and runs["last"][0] in page
    # The combined table is the output's own file, and its summary names it.
    with open(out / "evidence.csv", newline="", encoding="utf-8") as handle:
        ids = [r["report_id"] for r in csv.DictReader(handle)]
    assert ids[-added:] == list(runs["last"]) and len(ids) == old["prisma"]["in_table"] + added
    assert new["data_sha256"] == hashlib.sha256((out / "evidence.csv").read_bytes()).hexdigest()
    assert json.loads((out / "config.json").read_text())["data"]["path"].endswith("updated/evidence.csv")
    assert "average over reports (pooled mean)" in runs["stdout"]


def test_the_update_reproduces_the_last_step_of_the_cumulative_analysis(runs):
    new = json.loads((runs["out"] / "summary.json").read_text(encoding="utf-8"))
    final = runs["final"]
    assert (final.reports, final.patients, final.responders) == (
        new["evidence"]["reports"], new["evidence"]["patients"], new["evidence"]["responders"])
    assert format_number(new["pooled"]["mean"], 2) == format_number(final.pooled.mean, 2)
    assert new["pooled"]["mean"] == pytest.approx(final.pooled.mean, abs=cumulative.TOLERANCE)


def _row_file(runs, name: str, change) -> str:
    """A copy of the new reports' file with one change to its first row."""
    with open(runs["folder"] / "new.csv", newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    change(header, rows[0])
    _write(runs["folder"] / name, header, rows)
    return str(runs["folder"] / name)


def _set(column: str, value: str):
    return lambda header, row: row.__setitem__(header.index(column), value)


BAD = {
    "missing file": (lambda runs: str(runs["folder"] / "nowhere.csv"), "nowhere.csv: file not found"),
    "duplicate report_id": (lambda runs: _row_file(runs, "duplicate.csv", _set("report_id", "Albers2017")),
                            "column report_id: already in the signed-off evidence table"),
    "a bad count": (lambda runs: _row_file(runs, "bad_count.csv", _set("n_any_response", "three")),
                    "column n_any_response: 'three' is not a whole number"),
    "an unknown column": (lambda runs: _row_file(runs, "extra.csv", lambda header, row: (header.append("colour"),
                                                                                          row.append("blue"))),
                          "column 'colour' is not a column of the signed-off evidence table"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_one_line_before_any_computation(runs, case, capsys):
    make, message = BAD[case]
    path = make(runs)
    code = update.main(["--add", path, "--signed-off", str(runs["signed"]), "--out", str(runs["folder"] / case)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == 1 and err[0].startswith("error: "), err
    assert message in err[0] and (case == "missing file" or "row 1" in err[0] or "colour" in err[0]), err[0]
    assert not (runs["folder"] / case).exists()


def test_a_signed_off_folder_is_required(runs, capsys):
    code = update.main(["--add", str(runs["folder"] / "new.csv"), "--signed-off", str(runs["folder"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == 1 and "summary.json: not found" in err[0]


def test_the_output_may_not_be_inside_the_signed_off_folder(runs, capsys):
    code = update.main(["--add", str(runs["folder"] / "new.csv"), "--signed-off", str(runs["signed"]),
                        "--out", str(runs["signed"] / "update")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == 1 and "never written to" in err[0]


def test_a_signed_off_appraisal_needs_the_new_reports_appraisal_rows(runs, capsys):
    """A signed-off run that used an appraisal: each new report needs its row (--appraisal), one line each."""
    folder = runs["folder"] / "appraised"
    folder.mkdir()
    config = json.loads((runs["signed"] / "config.json").read_text(encoding="utf-8"))
    config["data"]["appraisal_path"] = "data/appraisal.csv"
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "summary.json").write_bytes((runs["signed"] / "summary.json").read_bytes())
    code = update.main(["--add", str(runs["folder"] / "new.csv"), "--signed-off", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == len(runs["last"])
    assert all("--appraisal FILE" in line and "column report_id" in line for line in err)


def test_the_signed_off_folder_is_never_modified(runs):
    assert _hashes(runs["signed"]) == runs["before"]
    assert runs["before"] and "summary.json" in runs["before"]
