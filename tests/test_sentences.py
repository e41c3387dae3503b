"""The sentences a reader quotes follow the data: each rule of the referee's list (E3–E15) checked on the
shipped data and on another data set (`tests/data/synthetic_reports.csv`), and no sentence with an empty
slot or another condition's name. The clinical rules E1, E2 and E13 are tested in test_outcomes_clinical.py."""

from __future__ import annotations

import html as html_lib
import json
import re
from collections import Counter

import pytest

RUNS = ("primary_run", "other_run")


def _text(fragment: str) -> str:
    """Visible text: tags dropped (a table cell, list item or paragraph ends with " | "), entities decoded,
    whitespace collapsed."""
    fragment = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", fragment, flags=re.S)
    fragment = re.sub(r"</?(span|a|strong|em|sup|sub|code|b|i)\b[^>]*>", "", fragment)
    fragment = re.sub(r"</(td|th|tr|li|p|h\d|caption|figcaption)>", " | ", fragment)  # cells are not one sentence
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


class Page:
    def __init__(self, out):
        self.summary = json.loads((out / "summary.json").read_text())
        self.html = (out / "report.html").read_text(encoding="utf-8")
        body, appendix = self.html.split('id="appendix"', 1)
        self.body, self.appendix = _text(body), _text(appendix)
        self.clinician = _text((out / "clinician.html").read_text(encoding="utf-8"))

    def section(self, anchor: str, following: str) -> str:
        start = self.html.index(f'id="{anchor}"')
        return _text(self.html[start:self.html.index(f'id="{following}"', start)])


@pytest.fixture(params=RUNS, scope="module")
def page(request) -> Page:
    code, out = request.getfixturevalue(request.param)
    assert code == 0
    return Page(out)


def test_e3_prior_predictive_section_shows_prior_checks_and_the_posterior_checks_have_their_own(page):
    prior_section = page.section("model", "computation")
    checks = page.section("checks", "sensitivity")
    assert "prior predictive" in prior_section and "posterior predictive" not in prior_section
    assert "posterior predictive" in checks or "leave-one-out" in checks
    assert "(top)" not in prior_section and "(bottom)" not in prior_section


def test_e4_heterogeneity_is_learnt_from_every_series_and_the_sentence_says_how_much_the_data_move_it(page):
    ev, het = page.summary["evidence"], page.summary["heterogeneity"]
    if ev["series"]:
        assert (f"learnt from the {ev['series']} reports of two or more patients (every series informs it); the "
                f"{ev['single_patient_reports']} single-patient reports carry no information about it") in page.body
    narrowed = het["posterior"]["ci95"][1] / het["prior"]["ci95"][1]
    verdict = "barely move" if narrowed > 0.6 else "narrow it" if narrowed > 0.3 else "pin it down"
    assert f"The data {verdict}" in page.body
    assert ("leans on the prior" in page.body) == (narrowed > 0.6)


def test_e6_publication_bias_of_harms_runs_the_other_way(page):
    grade = page.summary["grade"]
    response = grade[page.summary["outcome"]]["domains"]["publication_bias"]["reason"]
    assert "successes" in response
    if "adverse_events" in grade:
        harms = grade["adverse_events"]["domains"]["publication_bias"]["reason"]
        assert "under-reported" in harms and "opposite direction" in harms
    else:  # no report states an assessment: no row for harms
        assert page.summary["safety"] is None or page.summary["safety"]["assessed_patients"] == 0


def test_e7_bias_analyses_are_supporting_considerations_with_the_slope_fragility_stated(page):
    assert "supporting considerations (not a detection)" in page.body or not page.summary.get("small_study")
    assert "detected" not in page.body
    small = page.summary.get("small_study")
    if small and small["slopes"]["log_n"].get("without_most_influential"):
        report = small["slopes"]["log_n"]["without_most_influential"]["report"]
        assert f"without {report}" in page.body


def test_e8_no_clearly_lower_and_predictions_beyond_the_largest_report_are_marked(page):
    assert "clearly lower" not in page.body + page.appendix
    small = page.summary.get("small_study")
    if small:
        largest = max(r["n"] for r in page.summary["reports"].values())
        beyond = [p for p in small["predictions"] if p["n"] > largest]
        assert ("extrapolation" in page.section("bias", "graded")) == bool(beyond)


def test_e9_each_grade_row_counts_the_patients_behind_its_estimate(page):
    for outcome, row in page.summary["grade"].items():
        assert row["crude_n"] == row["graded_patients"], outcome
        assert row["estimate_patients"] >= row["graded_patients"]
        assert f"crude {row['crude_y']}/{row['crude_n']}" in page.body
    primary = page.summary["grade"][page.summary["outcome"]]
    assert primary["estimate_patients"] == page.summary["evidence"]["patients"]


def test_e10_the_risk_of_bias_summary_counts_the_pooled_reports(page):
    rob = page.summary.get("risk_of_bias")
    if not rob:
        assert page.summary["grade"][page.summary["outcome"]]["domains"]["risk_of_bias"]["judgement"] == "not assessable"
        return
    pooled = set(page.summary["reports"]) & set(rob["reports"])
    assert set(rob["pooled_reports"]) == pooled
    assert sum(rob["pooled_overall"].values()) == len(pooled)
    for item, counts in rob["pooled_items"].items():
        assert sum(counts.values()) == len(pooled), item


def test_e11_the_body_prints_one_interval_per_quantity(page):
    body_keys = re.findall(r'data-key="([^"]+)"', page.html.split('id="appendix"', 1)[0])
    assert not [k for k in body_keys if k.startswith(("target.", "cross_check."))]
    printed = Counter(k for k in body_keys if k.endswith(".ci95.0"))
    assert not [k for k, n in printed.items() if n > 2], printed  # bottom line and its section at most


def test_e12_power_scaling_labels_are_explained(page):
    if "both sensitive" in page.appendix:
        assert "not a conflict" in page.appendix
    assert "prior-data conflict" not in page.section("sensitivity", "bias-details") or "not a conflict" in page.appendix


def test_e14_no_small_text_errors(page):
    text = page.body + " " + page.appendix + " " + page.clinician
    assert not re.search(r"(?<![\d.])1 (reports|patients|responders)\b", text)
    for listing in re.findall(r"(?:[A-Z]\w+\d{4}\w*, )+(?:[A-Z]\w+\d{4}\w*)", text):
        names = [n.strip() for n in listing.split(",")]
        assert len(names) == len(set(names)), listing
    assert "typical report" not in text


def test_the_computation_section_names_each_cross_checked_quantity_in_words(page):
    """A2's NUTS cross-checks say which quantity differs most in words, not as a key of summary.json."""
    computation = page.section("computation", "checks")
    named = re.findall(r"largest difference (?:of a pooled mean )?is in ([^,]+),", computation)
    assert named, computation[:300]
    for quantity in named:
        assert not re.search(r"\w\.\w", quantity), quantity
    if page.summary.get("cross_check"):  # every quantity the check compares has its words, not only the largest
        from analysis.report.html import CROSS_CHECKED

        assert set(page.summary["cross_check"]["differences"]) <= set(CROSS_CHECKED)


def test_e15_no_prior_ess_for_the_target_arm_in_the_body(page):
    assert "worth about" not in page.body


def test_no_sentence_with_an_empty_slot_and_no_other_conditions_name(page):
    for text in (page.body, page.appendix, page.clinician):
        slot = r"\(\s*\)|''|\s,|: ,|\*\*|\bNone\b(?! of)|\bnan\b"
        assert not re.search(slot, text), re.search(f".{{40}}({slot}).{{40}}", text)
    condition = page.summary["condition"]
    if condition != "Hailey-Hailey disease":
        visible = page.body + page.appendix + page.clinician
        assert "Hailey" not in visible and not re.search(r"\bHHD\b", visible)
        assert condition in page.body and condition in page.clinician


def test_an_outcome_no_report_graded_is_not_headlined(other_run, tmp_path, model_cache):
    """A data set whose reports grade only any response: the graded-outcome model is not fitted (it would only
    repeat the primary analysis, its deeper outcomes their prior), the run says why, and the bottom line
    speaks of no deeper outcome."""
    import pandas as pd

    from analysis import fit
    from conftest import SYNTHETIC_DATA

    frame = pd.read_csv(SYNTHETIC_DATA)
    frame[["n_marked", "n_complete", "n_sustained"]] = None
    data = tmp_path / "any_only.csv"
    frame.to_csv(data, index=False)
    assert fit.main(["--data", str(data), "--out", str(tmp_path / "out"), "--no-sensitivity", "--no-figures"],
                    cache=model_cache) == 0
    body = Page(tmp_path / "out").body.split("2. What this evidence cannot say")[0]
    assert "marked" not in body and "clearance" not in body
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "graded" not in summary and "beyond any response" in summary["skipped"]["graded"]
    sentence = "No model of deeper responses: no report grades an outcome beyond any response"
    assert sentence in Page(tmp_path / "out").body
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")  # A7 says why it has no table
    details = page[page.index('id="graded-details"'):page.index('id="evidence-details"')]
    assert "Not modelled: no report grades an outcome beyond any response" in details
    target = page[page.index('id="target"'):page.index('id="design"')]  # a sentence: capital, full stop
    assert "<p>No included report of drug &#39;naloxone&#39;" in target and "was not computed.</p>" in target
