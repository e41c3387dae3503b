"""Clinical read-outs (analysis.clinical): safety, time to response, loss on treatment, dechallenge and
rechallenge, follow-up. The shipped numbers are facts of the extraction (data/README.md and the
literature README); the small made-up table checks that every number and sentence follows the data."""

import matplotlib
import pandas as pd
import pytest

from analysis import clinical
from analysis.config import PROJECT_ROOT
from analysis.data import load_evidence

matplotlib.use("Agg")

REPORTS = PROJECT_ROOT / "data" / "reports.csv"
PATIENTS = PROJECT_ROOT / "data" / "patients.csv"


@pytest.fixture(scope="module")
def reports():
    return load_evidence(REPORTS).frame


@pytest.fixture(scope="module")
def patients():
    return pd.read_csv(PATIENTS, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def naltrexone(reports, patients):
    return clinical.durability(reports, patients, "naltrexone")


def other_reports() -> pd.DataFrame:
    """Three reports of another data set: one names an event with a count, one is silent, one says none;
    plus one excluded row that must never count. No per-patient table."""
    return pd.DataFrame({
        "report_id": ["A2030", "B2031", "C2032", "D2033_duplicate"],
        "drug": ["naltrexone"] * 4,
        "n_treated": ["3", "5", "2", "4"],
        "n_any_response": ["2", "4", "2", "4"],
        "n_sustained": ["1", "", "2", "4"],
        "adverse_events": ["nausea (1 patient)", "not reported", "none", "nausea (4 patients)"],
        "followup_note": ["improvement within 3 weeks; followed 9 months", "response at week 4",
                          "assessed at 2 months", "cleared in 5 days"],
        "withdrawal_flare": ["no", "yes (2 patients)", "not reported", "yes"],
        "response_wording": ["2 improved, 1 relapsed on the drug", "4 responded", "both cleared", "all cleared"],
        "evidence": ["", "both flared on stopping and responded again on restarting", "", ""],
        "default_set": ["include", "include", "include", "exclude_duplicate"],
    })


# --- safety: the shipped data -------------------------------------------------------------------------


def test_safety_naltrexone_counts_only_stated_assessments(reports):
    s = clinical.safety(reports, "naltrexone")
    assessed = {r["report_id"]: r["patients"] for r in s["reports"] if r["status"] == "assessed, none"}
    assert assessed == {"Ibrahim2017": 3, "Kollman2018": 1, "Sonthalia2019": 1, "Moulin2019": 3, "Grolleau2020": 2}
    assert s["assessed_patients"] == 10 and s["patients_with_events"] == 0 and s["not_reported_patients"] == 33
    assert {r["status"] for r in s["reports"]} == {"assessed, none", "not reported"}
    assert s["unrecognised"] == []
    assert s["ci95"][0] == 0 and s["ci95"][1] == pytest.approx(0.3085, abs=5e-5)
    assert {"assessed_patients", "patients_with_events", "not_reported_patients", "ci95", "posterior", "reports",
            "sentence", "unrecognised"} <= set(s)


def test_safety_sentence_is_generated_from_the_numbers(reports):
    s = clinical.safety(reports, "naltrexone")
    assert s["sentence"].startswith("Adverse events were assessed in 10 of 43 patients (5 of 12 reports); "
                                    "none was recorded. 0 of 10 is compatible with a risk of up to 31% "
                                    "(exact 95% upper bound): these data cannot rule out common side effects")


def test_safety_naloxone(reports):
    s = clinical.safety(reports, "naloxone")
    assert (s["assessed_patients"], s["patients_with_events"], s["not_reported_patients"]) == (2, 0, 0)
    assert [r["report_id"] for r in s["reports"]] == ["Zheng2025"]
    assert "2 of 2 patients (1 of 1 report)" in s["sentence"] and "up to 84%" in s["sentence"]


def test_safety_posterior_is_the_stated_beta(reports):
    s = clinical.safety(reports, "naltrexone")
    post = s["posterior"]
    assert post["prior"] == "Beta(0.5, 0.5)"
    assert post["mean"] == pytest.approx(0.5 / 11, abs=1e-6)  # Beta(0.5, 10.5)
    assert post["ci95"][1] > post["upper95_one_sided"] > post["median"]
    uniform = clinical.safety(reports, "naltrexone", prior=(1, 1))["posterior"]
    assert uniform["prior"] == "Beta(1, 1)" and uniform["mean"] == pytest.approx(1 / 12, abs=1e-6)


def test_clopper_pearson_upper_bound_for_0_of_10():
    from analysis.intervals import clopper_pearson

    assert clopper_pearson(0, 10) == (0.0, pytest.approx(0.3085, abs=5e-5))
    assert clopper_pearson(0, 10)[1] == pytest.approx(1 - 0.025 ** (1 / 10))


@pytest.mark.parametrize("wording, status, events", [
    ("0 (none recorded)", "assessed, none", 0),
    ("0 (none)", "assessed, none", 0),
    ("none reported", "assessed, none", 0),
    ("none significant", "assessed, none", 0),
    ("No adverse events.", "assessed, none", 0),
    ("not reported", "not reported", None),
    ("not stated", "not reported", None),
    ("not read", "not reported", None),
    ("", "not reported", None),
    ("nausea (1 patient)", "assessed, event", 1),
    ("1 (vivid dreams)", "assessed, event", 1),
    ("headache in 2 of 5 patients", "assessed, event", 2),
    ("nausea (1 patient); insomnia (1 patient)", "assessed, event", 2),
    ("mild nausea", "assessed, event", None),  # a named event, no count
])
def test_adverse_event_vocabulary(wording, status, events):
    reading = clinical.classify_adverse_events(wording)
    assert (reading["status"], reading["events"]) == (status, events)
    assert reading["unrecognised"] == []


@pytest.mark.parametrize("wording", ["satisfactory tolerance", "well tolerated", "no nausea"])
def test_unrecognised_adverse_event_wording_is_not_reported_and_listed(wording):
    reading = clinical.classify_adverse_events(wording)
    assert reading["status"] == "not reported" and reading["unrecognised"]
    frame = pd.DataFrame({"report_id": ["X1"], "drug": ["naltrexone"], "n_treated": ["4"],
                          "adverse_events": [wording]})
    s = clinical.safety(frame, "naltrexone")
    assert s["not_reported_patients"] == 4 and s["assessed_patients"] == 0
    assert s["unrecognised"][0]["report_id"] == "X1" and s["ci95"] is None
    assert any("not recognised" in n for n in s["notes"]) and any("no interval" in n for n in s["notes"])
    assert "None of the 1 report" in s["sentence"] or "says nothing about its harms" in s["sentence"]


def test_named_event_without_a_count_is_left_out_of_the_risk_and_said():
    frame = pd.DataFrame({"report_id": ["X1", "X2"], "drug": ["naltrexone"] * 2, "n_treated": ["3", "6"],
                          "adverse_events": ["vivid dreams", "0 (none)"]})
    s = clinical.safety(frame, "naltrexone")
    assert s["assessed_patients"] == 9 and s["event_count_unknown_patients"] == 3
    assert s["patients_with_events"] == 0
    assert s["ci95"][1] == pytest.approx(1 - 0.025 ** (1 / 6))  # over the 6 with a known count
    assert any("X1 names an event" in n for n in s["notes"])
    assert "events were named (vivid dreams): 0 of the patients with a count given had one" in s["sentence"]
    assert "unknown number of 3 patients" in s["sentence"] and "0 of 6 is compatible" in s["sentence"]


# --- time to response: each shipped wording -----------------------------------------------------------


@pytest.mark.parametrize("wording, days, kind", [
    ("healing began 1-2 weeks", [7, 14], "range"),
    ("26 days", [26, 26], "point"),
    ("6 weeks", [42, 42], "point"),
    ("clear improvement day 8", [8, 8], "point"),
    ("within 2 months", [0, 60], "upper bound"),
    ("1 month", [30, 30], "point"),
    ("2 weeks", [14, 14], "point"),
    ("healing began after 14 days", [14, 14], "point"),
    ("two weeks", [14, 14], "point"),
    ("by day 10", [0, 10], "upper bound"),
])
def test_time_to_response_rules(wording, days, kind):
    parsed = clinical.parse_time_to_response(wording)
    assert (parsed["status"], parsed["days"], parsed["kind"]) == ("parsed", days, kind)


@pytest.mark.parametrize("wording, status", [
    ("assessed at 18 months", "follow-up time"),
    ("assessed at 3 months", "follow-up time"),
    ("visits every 2-3 months (Jan 2016 - Jan 2017)", "follow-up time"),
    ("sustained over 4 months", "follow-up time"),
    ("4 months drug-free on the topical cream", "follow-up time"),
    ("maintenance ongoing at report", "follow-up time"),
    ("not stated", "not stated"),
    ("", "not stated"),
    ("soon after starting", "not stated"),
])
def test_follow_up_wording_is_not_a_time_to_response(wording, status):
    parsed = clinical.parse_time_to_response(wording)
    assert parsed["status"] == status and parsed["days"] is None


@pytest.mark.parametrize("wording, days", [
    ("resolution within 2 months; total follow-up not stated", [0, 60]),
    ("clearing at 6 weeks", [42, 42]),
    ("26 days to documented improvement", [26, 26]),
    ("complete remission within 2 weeks", [0, 14]),
    ("7 months", None),  # a bare duration in a follow-up note is not a time to response
    ("3 months (2 patients) and 6 weeks (1 patient)", None),
])
def test_report_level_notes_need_a_response_word(wording, days):
    assert clinical.parse_time_to_response(wording, bare_duration=False)["days"] == days


def test_shipped_times_per_patient(naltrexone):
    parsed = {(t["report_id"], t["patient_id"]): t["days"] for t in naltrexone["time_to_response"]
              if t["status"] == "parsed"}
    assert parsed == {
        ("Albers2017", "P1"): [7, 14], ("Albers2017", "P2"): [7, 14], ("Albers2017", "P3"): [7, 14],
        ("Cao2018", "P2"): [0, 60], ("GarayarCantero2019", "P1"): [42, 42],
        ("Moulin2019", "P1"): [30, 30], ("Moulin2019", "P2"): [30, 30], ("Moulin2019", "P3"): [30, 30],
        ("McBride2020", "P1"): [26, 26], ("Grolleau2020", "P1"): [8, 8], ("Grolleau2020", "P2"): [14, 14],
    }
    wording = {(t["report_id"], t["patient_id"]): t["wording"] for t in naltrexone["time_to_response"]}
    assert wording[("Cao2018", "P1")] == "assessed at 18 months"
    assert {t["report_id"] for t in naltrexone["time_to_response_unparsed"]} == {
        "Ibrahim2017", "Cao2018", "Kollman2018", "Sonthalia2019", "JasansBarcelo2020", "Gavali2024",
        "Series14_Menta2024"}
    assert naltrexone["month_days"] == 30 and any("30 days" in n for n in naltrexone["notes"])


def test_naloxone_times(reports, patients):
    times = clinical.durability(reports, patients, "naloxone")["time_to_response"]
    assert [(t["patient_id"], t["days"]) for t in times] == [("P1", [14, 14]), ("P2", [14, 14])]


# --- loss on treatment, dechallenge, rechallenge, follow-up: the shipped data -------------------------


def test_loss_on_treatment_series14(naltrexone):
    loss = naltrexone["loss_on_treatment"]
    assert loss["reports_with_loss"] == ["Series14_Menta2024"] and loss["lost"] == 6
    row = next(r for r in loss["reports"] if r["report_id"] == "Series14_Menta2024")
    assert (row["n_any_response"], row["n_sustained"], row["lost"]) == (8, 2, 6)
    assert "relapsed on treatment" in row["response_wording"]
    assert "Cao2018" not in [r["report_id"] for r in loss["reports"]]  # blank sustained: not graded


def test_dechallenge_and_rechallenge_shipped(naltrexone):
    by = {r["report_id"]: r for r in naltrexone["dechallenge"]["reports"]}
    assert (by["Albers2017"]["dechallenge"], by["Albers2017"]["rechallenge"], by["Albers2017"]["patients"]) == (
        "positive", "positive", 1)  # one patient, not three: the series-level wording
    assert (by["Sonthalia2019"]["dechallenge"], by["Sonthalia2019"]["rechallenge"]) == ("positive", "positive")
    assert (by["Cao2018"]["dechallenge"], by["Cao2018"]["rechallenge"], by["Cao2018"]["patients"]) == (
        "positive", "slower", 1)
    assert (by["Kollman2018"]["dechallenge"], by["Kollman2018"]["on"]) == ("positive", "dose reduction")
    assert by["Gavali2024"]["dechallenge"] == "no flare on treatment (not a dechallenge)"
    for rid in ("Ibrahim2017", "GarayarCantero2019", "Moulin2019", "JasansBarcelo2020", "McBride2020",
                "Grolleau2020", "Series14_Menta2024"):
        assert by[rid]["dechallenge"] == "not tried or not reported" and by[rid]["rechallenge"] == "not reported"
    assert "for the series" in by["Albers2017"]["wording"]
    assert any(n.startswith("Albers2017") and "1 patient" in n for n in naltrexone["dechallenge"]["notes"])
    totals = naltrexone["dechallenge"]["totals"]
    assert (totals["reports_positive_dechallenge"], totals["patients_positive_dechallenge"]) == (4, 4)
    assert (totals["reports_positive_dechallenge_rechallenge"],
            totals["patients_positive_dechallenge_rechallenge"]) == (2, 2)


@pytest.mark.parametrize("wording, status, on", [
    ("yes", "positive", "stopping"),
    ("yes (on dose reduction)", "positive", "dose reduction"),
    ("yes - flare 3 weeks after self-discontinuation", "positive", "stopping"),
    ("dose-dependent flares", "positive", "dose reduction"),
    ("flare on discontinuation reported for the series (per-patient detail not in abstract)", "positive",
     "stopping"),
    ("no flares over 4 months", "no flare on treatment (not a dechallenge)", None),
    ("no flares over 4 months on treatment", "no flare on treatment (not a dechallenge)", None),
    ("no", "negative", "stopping"),
    ("not reported", "not tried or not reported", None),
    ("not read", "not tried or not reported", None),
    ("not stated", "not tried or not reported", None),
    ("", "not tried or not reported", None),
])
def test_flare_vocabulary(wording, status, on):
    assert clinical.classify_flare(wording)[:2] == (status, on)


@pytest.mark.parametrize("texts, status", [
    (["remission on 5 mg/day; relapse on stopping; improved again on restart"], "positive"),
    (["flares on stopping cleared within days of rechallenge"], "positive"),
    (["relapsed on stopping and remitted again on restarting."], "positive"),
    (["complete resolution on 12.5 mg; after restart at 4.5 mg improving more slowly at 1 month"], "slower"),
    (["clearance maintained on LDN; flares when dose lowered"], "not reported"),
])
def test_rechallenge_vocabulary(texts, status):
    assert clinical.classify_rechallenge(texts)[0] == status


def test_followup_shipped(naltrexone):
    follow = {r["report_id"]: r for r in naltrexone["followup"]["reports"]}
    assert follow["Cao2018"]["months"] == 18 and follow["Ibrahim2017"]["months"] == 12
    assert follow["Moulin2019"]["days"] == 90 and follow["Gavali2024"]["days"] == 120
    assert not follow["Albers2017"]["stated"] and not follow["McBride2020"]["stated"]
    assert not follow["Series14_Menta2024"]["stated"]
    assert naltrexone["followup"]["reports_stated"] == 7
    assert naltrexone["followup"]["sentence"].startswith("Follow-up is stated in 7 of 12 reports, from 3 to 18 months")


def test_durability_sentences_shipped(naltrexone):
    sentences = naltrexone["sentences"]
    assert 3 <= len(sentences) <= 5
    assert "11 of 43 patients (6 of 12 reports)" in sentences[0] and "between 7 and 42 days" in sentences[0]
    assert "within 60 days" in sentences[0]
    assert "6 of 25 responders" in sentences[1] and "Series14_Menta2024" in sentences[1]
    assert "4 of 12 reports (4 patients" in sentences[2] and "2 of them (2 patients)" in sentences[2]
    assert "7 of 12 reports" in sentences[3] and "beyond 6 months" in sentences[3]


# --- another data set: every number and sentence follows it ------------------------------------------


def test_safety_on_another_data_set():
    s = clinical.safety(other_reports(), "naltrexone")
    assert (s["assessed_patients"], s["patients_with_events"], s["not_reported_patients"]) == (5, 1, 5)
    assert [(r["report_id"], r["status"]) for r in s["reports"]] == [
        ("A2030", "assessed, event"), ("B2031", "not reported"), ("C2032", "assessed, none")]
    assert s["ci95"] == [pytest.approx(v, abs=1e-6) for v in (0.005051, 0.716418)]
    assert s["sentence"] == ("Adverse events were assessed in 5 of 10 patients (2 of 3 reports); 1 had an event "
                             "(nausea). 1 of 5 is compatible with a risk between 0.51% and 72% (exact 95% interval): "
                             "these data cannot rule out common side effects (1 patient in 10 or more).")


def test_durability_on_another_data_set_without_patients():
    d = clinical.durability(other_reports(), None, "naltrexone")
    times = {t["report_id"]: t for t in d["time_to_response"]}
    assert set(times) == {"A2030", "B2031", "C2032"}
    assert times["A2030"]["days"] == [0, 21] and times["A2030"]["patients"] == 3
    assert times["B2031"]["days"] == [28, 28] and times["C2032"]["status"] == "follow-up time"
    assert d["loss_on_treatment"]["reports_with_loss"] == ["A2030"] and d["loss_on_treatment"]["lost"] == 1
    by = {r["report_id"]: r for r in d["dechallenge"]["reports"]}
    assert by["A2030"]["dechallenge"] == "negative"
    assert (by["B2031"]["dechallenge"], by["B2031"]["patients"], by["B2031"]["rechallenge"]) == (
        "positive", 2, "positive")
    assert by["C2032"]["dechallenge"] == "not tried or not reported"
    follow = {r["report_id"]: r for r in d["followup"]["reports"]}
    assert follow["A2030"]["months"] == 9 and follow["C2032"]["months"] == 2 and not follow["B2031"]["stated"]
    s = d["sentences"]
    assert s[0] == ("How soon: a time to response is stated for 8 of 10 patients (2 of 3 reports); improvement was "
                    "first seen 28 days after starting, and 3 patients are described only as responding within "
                    "21 days.")
    assert "in the 2 reports that grade it, 1 of 4 responders lost the response" in s[1] and "A2030" in s[1]
    assert "1 of 3 reports (2 patients)" in s[2] and "1 reports stopping without a flare" in s[2]
    assert "2 of 3 reports, from 2 to 9 months" in s[3] and "1 of the 2 goes beyond 6 months" in s[3]
    assert any("no per-patient table" in n for n in d["notes"])


def test_missing_columns_say_not_available():
    frame = pd.DataFrame({"report_id": ["Z1"], "drug": ["naltrexone"], "n_treated": ["2"],
                          "n_any_response": ["1"]})
    s = clinical.safety(frame, "naltrexone")
    assert any("not available" in n for n in s["notes"]) and s["ci95"] is None
    d = clinical.durability(frame, None, "naltrexone")
    assert d["time_to_response"][0]["status"] == "not stated"
    assert d["dechallenge"]["reports"][0]["dechallenge"] == "not tried or not reported"
    assert d["loss_on_treatment"]["reports_graded"] == 0
    assert 3 <= len(d["sentences"]) <= 5


# --- the figure ---------------------------------------------------------------------------------------


def test_time_to_response_figure(naltrexone, tmp_path):
    from analysis.report.clinical_figures import time_to_response_figure
    from analysis.report.figures import save

    figure = time_to_response_figure(naltrexone)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels[0] == "Albers2017 P1" and "Cao2018 P2" in labels and len(labels) == 11
    save(figure, tmp_path, "time_to_response")
    assert (tmp_path / "time_to_response.png").stat().st_size > 0
    empty = time_to_response_figure(clinical.durability(other_reports().iloc[[2]], None, "naltrexone"))
    assert "no time to response stated" in [t.get_text() for t in empty.axes[0].texts]
