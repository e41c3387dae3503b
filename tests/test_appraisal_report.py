"""Risk of bias, GRADE and the PRISMA flow of the run follow the data files: change an answer or an
exclusion and the table, the rating and the flow change with it."""

import csv
import json

import pytest

from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import PROJECT_ROOT, load_config
from analysis.steps import evidence, grade

APPRAISAL = PROJECT_ROOT / "data" / "appraisal.csv"
EXCLUDED = PROJECT_ROOT / "data" / "excluded_on_reading.csv"


def inputs_with(**paths):
    return load_inputs(load_config(data=paths))


def appraised(inputs):
    """The risk-of-bias block and the GRADE risk-of-bias domain of the primary outcome, as the run makes
    them: the overall concern of every appraised report, weighted by the patients of the pooled reports."""
    rob = evidence.risk_of_bias(inputs.appraisal, inputs.data.report_ids)
    concerns = None if rob is None else {r: v["overall"] for r, v in rob.reports.items()}
    patients = dict(zip(inputs.data.report_ids, map(int, inputs.data.n)))
    return rob, grade.risk_of_bias(concerns, patients, inputs.config.grade)


def flow(inputs) -> dict:
    return evidence.prisma(inputs, inputs.config.borrowing.target_drug)


@pytest.fixture(scope="module")
def shipped():
    return inputs_with()


def test_an_appraisal_answer_changes_the_table_the_pooled_counts_and_the_grade(shipped, tmp_path):
    before, domain = appraised(shipped)
    assert before.reports["JasansBarcelo2020"]["q3_outcome"] == "yes"
    assert before.reports["JasansBarcelo2020"]["overall"] == "moderate"
    assert "JasansBarcelo2020" in before.pooled_reports
    assert domain.judgement == "serious"
    rows = list(csv.DictReader(APPRAISAL.open(encoding="utf-8")))
    for row in rows:
        if row["report_id"] == "JasansBarcelo2020":  # the 8-patient series judged high concern instead
            row["q3_outcome"], row["overall"] = "no", "high"
    changed = tmp_path / "appraisal.csv"
    with changed.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    after, domain = appraised(inputs_with(appraisal_path=str(changed)))
    assert after.reports["JasansBarcelo2020"] == {**before.reports["JasansBarcelo2020"],
                                                  "q3_outcome": "no", "overall": "high"}
    assert {r: v for r, v in after.reports.items() if r != "JasansBarcelo2020"} == {
        r: v for r, v in before.reports.items() if r != "JasansBarcelo2020"}
    assert after.pooled_overall == {**before.pooled_overall, "moderate": before.pooled_overall["moderate"] - 1,
                                    "high": before.pooled_overall["high"] + 1}
    assert after.pooled_items["q3_outcome"]["no"] == before.pooled_items["q3_outcome"]["no"] + 1
    # 14 + 8 + 2 + 1 of 43 patients now in reports of high concern: at least half, so very serious.
    assert domain.judgement == "very serious" and "58% high" in domain.reason


def test_risk_of_bias_counts_cover_the_pooled_reports_only(shipped):
    """The table lists every appraised report, but its counts describe the evidence behind the estimate."""
    rob, _ = appraised(shipped)
    assert set(rob.reports) == set(shipped.table.frame["report_id"])
    assert rob.pooled_reports == shipped.data.report_ids and len(rob.pooled_reports) == 12
    assert sum(rob.pooled_overall.values()) == 12 < len(rob.reports)
    assert all(sum(tally.values()) == 12 for tally in rob.pooled_items.values())
    high = [r for r in rob.pooled_reports if rob.reports[r]["overall"] == "high"]
    assert rob.pooled_overall["high"] == len(high)


def test_an_exclusion_changes_the_flow(shipped, tmp_path):
    before = flow(shipped)
    assert (before["assessed"], before["excluded_on_reading"], before["in_table"]) == (22, 5, 17)
    lines = EXCLUDED.read_text(encoding="utf-8").splitlines()
    fewer = tmp_path / "excluded.csv"
    fewer.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    after = flow(inputs_with(excluded_path=str(fewer)))
    assert (after["assessed"], after["excluded_on_reading"], after["in_table"]) == (21, 4, 17)
    assert after["included_reports"] == before["included_reports"] == {"naltrexone": 12, "naloxone": 1}


def test_without_an_appraisal_the_grade_says_it_cannot_judge_risk_of_bias():
    rob, domain = appraised(inputs_with(appraisal_path=""))
    assert rob is None
    assert domain.judgement == "not assessable" and "no risk-of-bias appraisal" in domain.reason


@pytest.mark.slow
def test_the_run_summary_carries_these_blocks(primary_run, shipped):
    """summary.json of the default command holds the table, the flow and the rating computed above."""
    code, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    rob, domain = appraised(shipped)
    assert summary["risk_of_bias"] == rob.to_dict()
    assert summary["grade"]["any_response"]["domains"]["risk_of_bias"] == domain.to_dict()
    assert summary["prisma"] == flow(shipped)
