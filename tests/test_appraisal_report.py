"""Risk of bias, GRADE and the PRISMA flow in the run's summary follow the data files: change an answer or
an exclusion and the table, the rating and the flow change with it."""

import csv

import pytest

from analysis.config import CONFIG_DIR, PROJECT_ROOT, load_config
from analysis.report.summary import summary_document
from analysis.run import run_all
from analysis.timing import Stopwatch


@pytest.fixture(scope="module")
def light_run(model_cache):
    config = load_config(CONFIG_DIR / "default.toml", graded={"enabled": False}, cumulative={"enabled": False})
    table, data = config.load()
    return run_all(config, table, data, model_cache, Stopwatch(model_cache), sensitivity=False)


def _with(run, **paths):
    config = run.config.model_copy(update={"data": run.config.data.model_copy(update=paths)})
    return summary_document(type(run)(**{**run.__dict__, "config": config}))


def test_an_appraisal_answer_changes_the_table_and_the_grade(light_run, tmp_path):
    before = summary_document(light_run)
    assert before["risk_of_bias"]["JasansBarcelo2020"]["q3_outcome"] == "yes"
    assert before["risk_of_bias"]["JasansBarcelo2020"]["overall"] == "moderate"
    assert before["grade"]["any_response"]["domains"]["risk_of_bias"]["judgement"] == "serious"
    rows = list(csv.DictReader((PROJECT_ROOT / "data" / "appraisal.csv").open(encoding="utf-8")))
    for row in rows:
        if row["report_id"] == "JasansBarcelo2020":  # the 8-patient series judged high concern instead
            row["q3_outcome"], row["overall"] = "no", "high"
    changed = tmp_path / "appraisal.csv"
    with changed.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    after = _with(light_run, appraisal_path=str(changed))
    assert after["risk_of_bias"]["JasansBarcelo2020"] == {**before["risk_of_bias"]["JasansBarcelo2020"],
                                                          "q3_outcome": "no", "overall": "high"}
    # 14 + 8 + 2 + 1 of 43 patients now in reports of high concern: at least half, so very serious.
    domain = after["grade"]["any_response"]["domains"]["risk_of_bias"]
    assert domain["judgement"] == "very serious" and "high concern 58%" in domain["reason"]


def test_an_exclusion_changes_the_flow(light_run, tmp_path):
    before = summary_document(light_run)["prisma"]
    assert (before["assessed"], before["excluded_on_reading"], before["in_table"]) == (22, 5, 17)
    lines = (PROJECT_ROOT / "data" / "excluded_on_reading.csv").read_text(encoding="utf-8").splitlines()
    fewer = tmp_path / "excluded.csv"
    fewer.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    after = _with(light_run, excluded_path=str(fewer))["prisma"]
    assert (after["assessed"], after["excluded_on_reading"], after["in_table"]) == (21, 4, 17)
    assert after["included_reports"] == before["included_reports"] == {"naltrexone": 12, "naloxone": 1}


def test_without_an_appraisal_the_grade_says_it_cannot_judge_risk_of_bias(light_run):
    summary = _with(light_run, appraisal_path="")
    assert summary["risk_of_bias"] is None
    domain = summary["grade"]["any_response"]["domains"]["risk_of_bias"]
    assert domain["judgement"] == "not assessable" and "no risk-of-bias appraisal" in domain["reason"]
