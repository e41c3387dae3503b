"""Statements of the report follow the data of the run (issue: the report tells the truth): run on
another data set, the sentences, counts and sections change with it; quantities without a mean are not
given one; a user's R export reads as they wrote it."""

import json
import re

import numpy as np
import pytest

from analysis import fit
from analysis.errors import InputError
from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import load_config
from analysis.inputs.evidence import load_evidence


def _text(html: str) -> str:
    """The page as a reader sees it: tags stripped, whitespace folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture(scope="module")
def other_run(tmp_path_factory, model_cache):
    """The default command on a made-up data set of 6 reports, three of one patient, two with a
    non-responder, no companion files (a user's own table)."""
    folder = tmp_path_factory.mktemp("other")
    csv = folder / "mine.csv"
    csv.write_text("report_id,drug,n_treated,n_any_response\n"
                   "Solo1,naltrexone,1,1\nSolo2,naltrexone,1,0\nSolo3,naltrexone,1,1\n"
                   "Five,naltrexone,5,5\nSix,naltrexone,6,3\nTen,naltrexone,10,4\n")
    out = folder / "out"
    assert fit.main(["--data", str(csv), "--out", str(out), "--no-sensitivity"], cache=model_cache) == fit.EXIT_OK
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_sentences_about_the_data_follow_another_data_set(other_run):
    summary, html = other_run
    evidence = summary["evidence"]
    assert (evidence["reports"], evidence["single_patient_reports"]) == (6, 3)
    assert evidence["heterogeneity_reports"] == ["Five", "Six", "Ten"]  # every series informs the spread
    assert evidence["contrast_reports"] == ["Six", "Ten"]
    assert summary["comparators"]["crude"]["y"] == 14 and summary["comparators"]["crude"]["n"] == 24
    text = _text(html)
    assert "How much reports differ is learnt from the 3 reports of two or more patients" in text
    assert "the 3 single-patient reports carry no information about it, and it shows most in Six and Ten" in text
    assert "crude rate of 0.58" in text
    # Columns the table does not have leave no empty slots in the evidence details.
    assert "source: not given in the data" in text and "drug: naltrexone, dose not stated" in text
    assert "( confidence)" not in text and "pooled; ," not in text
    # The shipped data's facts appear nowhere.
    assert "Series14_Menta2024" not in html and "36 of 43" not in text
    # No appraisal, no search log came with these data: the sections say so, nothing fails.
    assert "No risk-of-bias appraisal came with these data" in text and summary.get("risk_of_bias") is None
    assert "No search log came with these data" in text


@pytest.mark.slow
def test_a_quantity_without_a_mean_is_given_none(primary_run):
    """κ's posterior mean is infinite (u ~ HalfNormal has positive density at 0): median and quantiles only,
    in summary.json and the report (κ is exact on the grid: no Monte Carlo error of a mean either)."""
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    kappa = summary["hyperparameters"]["kappa"]
    assert kappa["mean"] is None and kappa["sd"] is None and kappa["median"] > 0 and len(kappa["ci95"]) == 2
    assert {"mean", "median", "ci95"} <= set(summary["heterogeneity"]["posterior"])
    assert kappa["method"] == "exact" and "mcse" not in kappa
    assert "its mean does not exist" in (out / "report.html").read_text(encoding="utf-8")


def test_an_r_export_reads_as_written(tmp_path):
    """R's write.csv writes NA for a missing value: in an outcome count it means not graded, as a blank does;
    in n_treated it stays an error."""
    csv = tmp_path / "from_r.csv"
    csv.write_text('"","report_id","drug","n_treated","n_any_response","n_marked","n_complete"\n'
                   '"1","A","naltrexone",3,3,NA,NA\n"2","B","naltrexone",2,1,1,N/A\n"3","C","naltrexone",4,NaN,n/a,0\n')
    table = load_evidence(csv, outcomes=("any_response", "marked", "complete"))
    frame = table.frame.set_index("report_id")
    assert frame.loc["A", "n_marked"] is pd_na() and frame.loc["B", "n_complete"] is pd_na()
    assert frame.loc["C", "n_any_response"] is pd_na() and frame.loc["C", "n_complete"] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("report_id,drug,n_treated,n_any_response\nA,naltrexone,NA,1\n")
    with pytest.raises(InputError) as err:
        load_evidence(bad)
    assert err.value.problems == [f"{bad}: row 1 (report_id A), column n_treated: 'NA' is not a whole number of 0 or more"]


def pd_na():
    import pandas as pd

    return pd.NA


def test_the_low_dose_variant_selects_on_the_starting_dose():
    config = load_config("analysis/configs/sens_evidence_low_start_dose.toml")
    assert "starting dose" in config.description and "depends on the outcome" in config.description
    data = load_inputs(config).data
    assert "Series14_Menta2024" in data.report_ids and not np.all(data.y == data.n)
