"""Sensitivity analyses: the variant configs, the evidence filters they use, leave-one-out, and the command
`python -m analysis.sensitivity` (its outputs, its exit statuses, its refusals of bad input)."""

import csv
import json
import re
import socket
import tomllib

import pytest

from analysis import sensitivity
from analysis.cli import EXIT_BAD_INPUT, EXIT_GATE_FAILED
from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import CONFIG_DIR, PROJECT_ROOT, load_config, user_overrides
from analysis.inputs.evidence import Selection, load_evidence, select_counts
from analysis.report.format import lookup
from analysis.results import Estimate
from analysis.results.sweep import Sweep, VariantRow
from analysis.steps import sweep

REPORTS = PROJECT_ROOT / "data" / "reports.csv"
VARIANTS = sorted(CONFIG_DIR.glob("sens_*.toml"))
CHEAP = ("sens_evidence_series_only", "sens_prior_u1", "sens_outcome_marked")
"""Config variants of the reduced sweep: exact on the grid, one of another estimand."""


@pytest.fixture(scope="module")
def table():
    return load_evidence(REPORTS, outcomes=("any_response", "marked", "complete", "sustained"))


# --- the variant configs ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VARIANTS, ids=[p.stem for p in VARIANTS])
def test_every_variant_extends_the_primary_and_changes_something(path):
    document = tomllib.loads(path.read_text())
    assert document["extends"] in ("default.toml", "logit_normal.toml")
    config, primary = load_config(path), load_config()
    assert config.description
    changed = [s for s in ("data", "model", "sampling", "diagnostics", "borrowing", "graded")
               if getattr(config, s) != getattr(primary, s)]
    assert changed, f"{path.name} changes nothing"


def test_every_variant_is_listed_in_the_readme():
    readme = (PROJECT_ROOT / "README.md").read_text()
    for path in VARIANTS:
        assert f"`{path.stem}`" in readme, path.stem


def test_discover_finds_every_config_variant_in_a_group_with_the_runs_data_and_seed(tmp_path):
    data = tmp_path / "reports.csv"
    variants = sweep.discover(data, seed=7)
    assert [v.name for v in variants] == ["logit_normal", *(p.stem for p in VARIANTS)]
    assert all(v.group != "other" and v.kind in ("bias", "choice") for v in variants)
    assert all(v.overrides == {**user_overrides(data), "sampling": {"seed": 7}} for v in variants)


def test_a_variant_that_cannot_run_is_marked_with_the_reason(tmp_path, model_cache):
    missing = sweep.Variant("broken", "other", "choice", "a config that does not exist", tmp_path / "missing.toml")
    (tmp_path / "empty.csv").write_text("report_id,drug,n_treated,n_any_response\nA,naloxone,2,2\n")
    no_data = sweep.Variant("no_data", "other", "choice", "no naltrexone rows", CONFIG_DIR / "default.toml",
                            user_overrides(tmp_path / "empty.csv"))
    (broken,), (empty,) = sweep.config_rows(missing, model_cache), sweep.config_rows(no_data, model_cache)
    assert broken.status == "not run" and "config file not found" in broken.error
    assert empty.status == "not run" and "no report left" in empty.error


# --- evidence filters --------------------------------------------------------------------------------


def _selected(table, **selection):
    return select_counts(table, "any_response", "naltrexone", Selection(**selection))


def test_series_and_single_patient_filters(table):
    assert set(_selected(table, min_n=2).n) >= {2} and min(_selected(table, min_n=2).n) >= 2
    single = _selected(table, max_n=1)
    assert set(single.n) == {1} and len(single) == 4  # Kollman, Garayar Cantero, Sonthalia, McBride


def test_low_dose_filter_selects_on_the_starting_dose_per_patient_where_known(table):
    """Non-responders were escalated, so the highest dose depends on the outcome; the starting dose does
    not. Reports with patient rows count only the patients whose starting dose is known and low."""
    patients = load_inputs(load_config()).patients
    low = select_counts(table, "any_response", "naltrexone", Selection(max_start_dose_mg=6.25), patients)
    counts = dict(zip(low.report_ids, zip(low.y, low.n)))
    # Started at 1.5-6 mg (report level): the escalated non-responders stay in.
    assert counts["Series14_Menta2024"] == (8, 14) and counts["JasansBarcelo2020"] == (7, 8)
    # Cao2018: patient 1 started at 4.5 mg, patient 2 at 12.5 mg, patient 3's dose was not read.
    assert counts["Cao2018"] == (1, 1)
    assert "Grolleau2020" not in counts  # both started at 12.5 mg
    assert {"Kollman2018", "McBride2020"}.isdisjoint(counts)  # no dose stated
    without_patients = select_counts(table, "any_response", "naltrexone", Selection(max_start_dose_mg=6.25))
    assert dict(zip(without_patients.report_ids, without_patients.n))["Cao2018"] == 3  # report-level dose_mg_min 4.5


def test_source_level_filters(table):
    no_secondary = _selected(table, exclude_source_levels=("secondary_summary", "secondary_review", "secondary_lay"))
    assert "Series14_Menta2024" not in no_secondary.report_ids and "Kollman2018" not in no_secondary.report_ids
    no_conference = _selected(table, exclude_source_levels=("conference_abstract",))
    assert {"Moulin2019", "Grolleau2020"}.isdisjoint(no_conference.report_ids) and len(no_conference) == 10


def test_worst_case_adds_the_unverified_report_and_counts_missing_outcomes_as_failures(table):
    worst = _selected(table, include_reasons=("exclude_unverified", "exclude_no_outcome"),
                      blank_as_nonresponse=("exclude_no_outcome",))
    by_id = dict(zip(worst.report_ids, zip(worst.y, worst.n)))
    assert by_id["Campbell2018_unverified"] == (1, 1)
    assert by_id["Santoso2024_priorLDN"] == (0, 2) and by_id["BritoCaldeira2023_priorLDN"] == (0, 1)
    assert "Li2017_duplicate" not in by_id  # a duplicate patient is never pooled
    assert (len(worst), int(worst.n.sum()), int(worst.y.sum())) == (15, 47, 37)


# --- the command, on a reduced sweep ----------------------------------------------------------------


@pytest.fixture(scope="session")
def run(tmp_path_factory, worker_id, model_cache):
    """The command once, with three config variants and one that cannot run (every other row of the sweep,
    leave-one-out and the other steps' rows, as in a full run): by the first test process that needs it,
    while the others wait on a lock in the session's shared folder. Returns its status, its output folder
    and sensitivity.json."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    base = shared / "sensitivity"
    with FileLock(shared / "sensitivity.lock"):
        if not (base / "status").exists():
            broken = sweep.Variant("broken", "other", "choice", "A config that does not exist", base / "missing.toml")
            original = sweep.discover
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(sweep, "discover",
                              lambda data, seed: [v for v in original(data, seed) if v.name in CHEAP] + [broken])
                status = sensitivity.main(["--out", str(base / "out")])
            (base / "status").write_text(str(status))
    out = base / "out"
    return int((base / "status").read_text()), out, json.loads((out / "sensitivity.json").read_text())


def _assert_every_number_is_the_json_number(out):
    """Each tagged number of the page is the value at its key in sensitivity.json, rounded to the digits
    printed (however many the page chose: Monte Carlo error can leave fewer)."""
    html = (out / "sensitivity.html").read_text(encoding="utf-8")
    document = json.loads((out / "sensitivity.json").read_text())
    keyed = re.findall(r'data-key="([^"]+)"(?: data-scale="\d+")?>([^<]*)<', html)
    assert len(keyed) > 150
    for key, text in keyed:
        value = lookup(document, key)
        if isinstance(value, str | int):
            assert text == str(value), key
            continue
        printed = text.removeprefix("≈").replace("−", "-")
        decimals = len(printed.split(".")[1]) if "." in printed else 0
        assert abs(float(printed) - value) <= 0.5 * 10**-decimals + 1e-9, (key, text, value)


def test_the_command_writes_its_outputs(run):
    status, out, document = run
    assert status == 0
    assert {p.name for p in out.iterdir()} >= {"sensitivity.csv", "sensitivity.json", "sensitivity.html", "figures",
                                               "run.log"}
    assert {p.name for p in (out / "figures").iterdir()} == {"sensitivity_tornado.png", "sensitivity_forest.png"}
    assert document["sensitivity"]["status"] == "run" and {"mu", "u"} == {r["parameter"] for r in
                                                                          document["sensitivity"]["psense"]}
    assert document["config"] == "default" and len(document["data_sha256"]) == 64
    with open(out / "sensitivity.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["variant"] for r in rows] == [v["variant"] for v in document["sensitivity"]["variants"]]
    assert {"pooled_mean", "pooled_ci95_lo", "pooled_ci95_hi", "predictive_mean", "target_mean", "status"} \
        <= set(rows[0])


def test_the_page_is_self_contained_and_every_number_is_the_json_number(run):
    _, out, document = run
    html = (out / "sensitivity.html").read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html) and "@import" not in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 2 and all(src.startswith("data:image/png;base64,") for src in images)
    _assert_every_number_is_the_json_number(out)
    # Every variant is on the page (leave-one-out twins beside the first of them), the unrunnable with its reason.
    for row in document["sensitivity"]["variants"]:
        assert row["variant"].removeprefix("loo_") in html
    assert "Variants that could not run" in html and "config file not found" in html
    assert "COMPUTATIONAL CHECKS FAILED" not in html


def test_leave_one_out_variants_drop_exactly_one_report(run, table):
    primary = _selected(table)
    rows = [r for r in run[2]["sensitivity"]["variants"] if r["group"] == "leave one out"]
    assert [r["variant"] for r in rows] == [f"loo_{rid}" for rid in primary.report_ids]
    for row, y, n in zip(rows, primary.y, primary.n):
        assert (row["reports"], row["patients"], row["responders"]) == (len(primary) - 1, primary.n.sum() - n,
                                                                        primary.y.sum() - y)


def test_shifts_are_given_for_the_primary_estimand_only(run):
    first, *others = run[2]["sensitivity"]["variants"]
    assert first["variant"] == "primary" and first["pooled_shift"] == 0
    assert {r["kind"] for r in others} == {"bias", "choice"}
    for row in others:
        assert (row["pooled_shift"] is not None) == (row["estimand"] == "primary" and row["pooled"] is not None), \
            row["variant"]


def _row(variant: str, status: str, mean: float, shift: float, error: str = "") -> VariantRow:
    estimate = Estimate(mean, mean, 0.05, mean - 0.1, mean + 0.05)
    kind = "primary" if variant == "primary" else "choice"
    return VariantRow(variant, kind, kind, variant.replace("_", " "), "primary", status, error, "any_response",
                      "beta_binomial", 12, 43, 36, estimate, estimate, pooled_shift=shift)


def test_a_failed_convergence_check_writes_the_outputs_marked_and_exits_1(tmp_path, monkeypatch):
    rows = (_row("primary", "passed", 0.87, 0.0), _row("logit_normal", "failed", 0.8, -0.07, "R-hat 1.2 above 1.01"))
    monkeypatch.setattr(sensitivity, "compute", lambda *args: (Sweep("run", "", rows, ()), None))
    assert sensitivity.main(["--out", str(tmp_path / "out")]) == EXIT_GATE_FAILED
    html = (tmp_path / "out" / "sensitivity.html").read_text(encoding="utf-8")
    banner = html.index("COMPUTATIONAL CHECKS FAILED")
    assert banner < html.index("If an analysis choice were different") and "logit_normal: R-hat 1.2 above 1.01" in html
    assert '<tr class="bad">' in html


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("options, message", [
    (["--config", "missing.toml"], "config file not found"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--scheduler", f"tcp://127.0.0.1:{_closed_port()}"], "cannot reach a Dask scheduler"),
    (["--data", "missing.csv"], "missing.csv"),
], ids=["config", "workers", "scheduler", "data"])
def test_bad_input_is_one_line_and_exit_2_before_any_computation(options, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sensitivity, "compute", lambda *args: pytest.fail("computed despite bad input"))
    assert sensitivity.main([*options, "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_is_not_the_tools_is_refused(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert sensitivity.main(["--out", str(tmp_path / "mine")]) == EXIT_BAD_INPUT
    assert "is not an output of this tool" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


# --- the full sweep ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_sweep_on_local_workers_runs_every_variant(tmp_path, model_cache):
    assert sensitivity.main(["--out", str(tmp_path / "sens"), "--workers", "2"]) == 0
    _assert_every_number_is_the_json_number(tmp_path / "sens")
    rows = json.loads((tmp_path / "sens" / "sensitivity.json").read_text())["sensitivity"]["variants"]
    names = [r["variant"] for r in rows]
    for variant in sweep.discover():
        assert any(n == variant.name or n.startswith(variant.name + "_") for n in names), variant.name
    assert sum(n.startswith("loo_") for n in names) == len(_selected(load_evidence(REPORTS)))
    assert [(r["variant"], r["error"]) for r in rows if r["status"] != "passed"] == []


@pytest.mark.slow
def test_the_primary_report_carries_its_sweep_and_a_draft_says_so(primary_run, tmp_path, model_cache):
    """The default command draws the sweep into the report (no link to a page that may not exist); a run
    with --no-sensitivity is marked as a draft at the top."""
    from analysis import fit

    _, out = primary_run
    html = (out / "report.html").read_text(encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sensitivity"]["status"] == "run" and "Draft" not in html
    variants = {row["variant"] for row in summary["sensitivity"]["variants"]}
    assert {"publication_all_w010", "sens_metareg_log_n", "loo_Series14_Menta2024",
            "sens_graded_missing_as_failure_complete"} <= variants
    assert "figures/sensitivity_tornado" in html and (out / "sensitivity.csv").is_file()
    links = re.findall(r'href="([^"]+)"', html)
    assert all(link.startswith(("https://", "#", "clinician.html")) for link in links)
    draft = tmp_path / "draft"
    assert fit.main(["--out", str(draft), "--no-sensitivity"], cache=model_cache) == fit.EXIT_OK
    draft_html = (draft / "report.html").read_text(encoding="utf-8")
    assert "Draft: sensitivity analyses not run" in draft_html
    assert draft_html.index("Draft: sensitivity analyses not run") < draft_html.index('id="bottom-line"')
    assert json.loads((draft / "summary.json").read_text())["sensitivity"]["status"] == "not run"
