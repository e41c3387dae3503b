"""Sensitivity analyses: the variants, the evidence filters, leave-one-out, the selection model, the sweep."""

import re
import tomllib

import pandas as pd
import pytest

from analysis import sensitivity
from analysis.config import CONFIG_DIR, PROJECT_ROOT, load_config, user_data
from analysis.data import Selection, load_evidence, read_table, select_counts
from analysis.executors import LocalExecutor

REPORTS = PROJECT_ROOT / "data" / "reports.csv"
VARIANTS = sorted(CONFIG_DIR.glob("sens_*.toml"))


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
    patients = read_table(PROJECT_ROOT / "data" / "patients.csv")
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


def test_leave_one_out_variants_drop_exactly_one_report(table):
    variants = [v for v in sensitivity.discover_variants(None) if v.group == "leave one out"]
    primary = _selected(table)
    assert [v.name for v in variants] == [f"loo_{r}" for r in primary.report_ids]
    for variant in variants:
        config = load_config(variant.path, **variant.overrides)
        left = select_counts(table, "any_response", "naltrexone", config.data.selection())
        assert set(primary.report_ids) - set(left.report_ids) == {variant.name.removeprefix("loo_")}


# --- the sweep ---------------------------------------------------------------------------------------


def test_sweep_compiles_once_per_structure_and_marks_failures(tmp_path):
    variants = [v for v in sensitivity.discover_variants(None)
                if v.name in ("primary", "loo_Albers2017", "sens_publication_single_w050")]
    variants.append(sensitivity.Variant("broken", "other", "a config that does not exist", tmp_path / "missing.toml", {}))
    (tmp_path / "empty.csv").write_text("report_id,drug,n_treated,n_any_response\nA,naloxone,2,2\n")
    variants.append(sensitivity.Variant("no_data", "other", "no naltrexone rows", CONFIG_DIR / "default.toml",
                                        {"data": user_data(tmp_path / "empty.csv")}))
    with LocalExecutor(workers=1) as executor:  # a fresh worker process: counts this sweep's compilations only
        table = sensitivity.run_sweep(variants, executor)
    # Three fitted variants (the naloxone column reweights their draws): one structure, prepared once; the
    # primary's graded-outcome rows add the sequential model's.
    assert executor.programs == 2
    rows = table.set_index("variant")
    assert rows.loc[["primary", "loo_Albers2017", "sens_publication_single_w050", "graded_marked"], "passed"].all()
    assert not rows.loc["broken", "passed"] and "config file not found" in rows.loc["broken", "error"]
    assert not rows.loc["no_data", "passed"] and "no report left" in rows.loc["no_data", "error"]
    assert rows.loc["primary", "pooled_shift"] == 0 and rows.loc["loo_Albers2017", "reports"] == 11


def test_sensitivity_command_writes_its_outputs(tmp_path, model_cache, monkeypatch):
    chosen = ("primary", "logit_normal", "loo_Series14_Menta2024")
    original = sensitivity.discover_variants
    monkeypatch.setattr(sensitivity, "discover_variants",
                        lambda data, seed: [v for v in original(data, seed) if v.name in chosen])
    assert sensitivity.main(["--out", str(tmp_path / "sens"), "--workers", "1"]) == 0
    out = tmp_path / "sens"
    table = pd.read_csv(out / "summary.csv")
    graded = [f"graded_{o}" for o in ("marked", "complete", "sustained")]
    assert list(table["variant"]) == [chosen[0], *graded, *chosen[1:]]
    assert {"pooled_mean", "pooled_lo", "pooled_hi", "predictive_mean", "naloxone_mean", "status"} <= set(table.columns)
    html = (out / "index.html").read_text()
    assert "data:image/png;base64," in html and "loo_Series14_Menta2024" in html and "<script" not in html
    psense = pd.read_csv(out / "psense.csv")
    assert set(psense["parameter"]) == {"mu", "u"} and {"prior", "likelihood"} <= set(psense.columns)
    assert (out / "figures" / "sensitivity_forest.png").is_file() and (out / "figures" / "sensitivity_forest.svg").is_file()


@pytest.mark.slow
def test_full_sweep_runs_every_variant(tmp_path, model_cache):
    assert sensitivity.main(["--out", str(tmp_path / "sens"), "--workers", "1"]) == 0
    table = pd.read_csv(tmp_path / "sens" / "summary.csv")
    # primary (and its 3 graded-outcome rows), logit-normal, every sens_*.toml (the graded one gives 3 rows)
    # and one leave-one-out per pooled report
    assert len(table) == 4 + 1 + len(VARIANTS) + 2 + 12 and (table["status"] == "passed").all()


def test_the_primary_report_carries_its_sweep_and_a_draft_says_so(primary_run, tmp_path, model_cache):
    """The default command draws the sweep into the report (no link to a page that may not exist); a run
    with --no-sensitivity is marked as a draft at the top."""
    import json

    from analysis import fit

    _, out = primary_run
    html = (out / "report.html").read_text(encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sensitivity"]["status"] == "run" and "Draft" not in html
    variants = {row["variant"] for row in summary["sensitivity"]["variants"]}
    assert {"sens_publication_all_w010", "sens_metareg_log_n", "loo_Series14_Menta2024", "graded_complete"} <= variants
    assert "sensitivity_tornado.png" in html or 'figures/sensitivity_tornado' in html
    assert (out / "sensitivity.csv").is_file()
    links = re.findall(r'href="([^"]+)"', html)
    assert links and all(link.startswith(("https://", "#")) for link in links)
    draft = tmp_path / "draft"
    assert fit.main(["--out", str(draft), "--no-sensitivity"], cache=model_cache) == fit.EXIT_OK
    draft_html = (draft / "report.html").read_text(encoding="utf-8")
    assert "Draft: sensitivity analyses not run" in draft_html
    assert draft_html.index("Draft: sensitivity analyses not run") < draft_html.index('id="headline"')
    assert json.loads((draft / "summary.json").read_text())["sensitivity"]["status"] == "not run"
