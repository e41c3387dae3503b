"""Clinical read-outs: the parsers of `analysis.steps.clinical.wording` on strings, the counts of
`safety` and `durability` on the shipped data and on another data set built here (other report ids,
wording, drug and condition), the typed results' `to_dict` keys, and the sentences of
`analysis.report.prose.clinical` in every branch. The shipped numbers are facts of the extraction
(data/README.md and the literature README)."""

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.inputs.evidence import load_evidence
from analysis.inputs.patients import read_patients
from analysis.report.prose import clinical as prose
from analysis.results import Estimate
from analysis.results.clinical import Durability, Followup, Safety, TimeToFirstImprovement
from analysis.steps import clinical
from analysis.steps.clinical import wording

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "data" / "reports.csv"
PATIENTS = ROOT / "data" / "patients.csv"


@pytest.fixture(scope="module")
def reports():
    return load_evidence(REPORTS).frame


@pytest.fixture(scope="module")
def patients(reports):
    return read_patients(PATIENTS, set(reports["report_id"]), REPORTS)


@pytest.fixture(scope="module")
def naltrexone(reports, patients) -> Durability:
    return clinical.durability(reports, patients, "naltrexone")


@pytest.fixture(scope="module")
def harms(reports) -> Safety:
    return clinical.safety(reports, "naltrexone")


def whole(sentence: str) -> str:
    """A sentence with no empty slot: no None, nan, braces, empty brackets, doubled spaces or stray
    punctuation, and a full stop at the end."""
    assert sentence and sentence.endswith("."), sentence
    for bad in ("nan", "{", "}", "()", "  ", " ,", " .", " ;", ";;", ",,", "..", " 0 reports", "[]", "''"):
        assert bad not in sentence, (bad, sentence)
    assert not re.search(r"\bNone\b(?! of)", sentence), sentence
    return sentence


# --- another data set: a CSV of its own ----------------------------------------------------------------

OTHER_REPORTS = """\
report_id,drug,n_treated,n_any_response,n_sustained,adverse_events,followup_note,withdrawal_flare,response_wording,evidence,default_set
Okafor2031,dapsone,4,3,2,nausea (1 patient),first improvement at 10 days; followed for 9 months,no,"3 improved, 1 relapsed on the drug",,include
Lindqvist2032,dapsone,5,4,,no significant side effects,response assessed at week 8; study period 2019-2021,yes (2 patients),4 responded,both flared on stopping and responded again on restarting,include
Tanaka2033,dapsone,2,2,,not read,3 months dapsone-free after tapering,not read,both cleared,,include
Reyes2034_duplicate,dapsone,3,3,3,headache (3 patients),followed 24 months,yes,all cleared,,exclude_duplicate
Mbeki2035,dapsone,3,3,3,0 (none),cleared by week 6; followed 14 months on treatment,not stated,complete clearance in all 3,,include
"""
OTHER_PATIENTS = """\
report_id,patient_id,time_to_response,outcome_as_reported,any_response,relapse_on_stop,followup
Okafor2031,P1,improvement began after 10 days,pustules settled,1,,9 months
Okafor2031,P2,3 weeks,complete clearance at 3 weeks,1,,9 months
Okafor2031,P3,,partial improvement,1,,5 weeks
Okafor2031,P4,,no change,0,,
"""


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """Subcorneal pustular dermatosis on dapsone: the evidence table and its per-patient table."""
    folder = tmp_path_factory.mktemp("other")
    (folder / "reports.csv").write_text(OTHER_REPORTS, encoding="utf-8")
    (folder / "patients.csv").write_text(OTHER_PATIENTS, encoding="utf-8")
    frame = load_evidence(folder / "reports.csv", known_drugs=("dapsone",)).frame
    own = read_patients(folder / "patients.csv", set(frame["report_id"]), folder / "reports.csv")
    return frame, own


@pytest.fixture(scope="module")
def dapsone(other) -> Durability:
    return clinical.durability(*other, "dapsone")


def small_reports() -> pd.DataFrame:
    """Three reports without a per-patient table: one names an event with a count, one is silent, one
    says none; plus one excluded row that must never count."""
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


# --- parsers on strings: adverse events ----------------------------------------------------------------


@pytest.mark.parametrize("text, status, events", [
    ("0 (none recorded)", "assessed, none", 0),
    ("0 (none)", "assessed, none", 0),
    ("none reported", "assessed, none", 0),
    ("No adverse events.", "assessed, none", 0),
    ("none significant", "none significant", 0),
    ("no significant side effects", "none significant", 0),
    ("No serious adverse events", "none significant", 0),
    ("not reported", "not reported", None),
    ("not stated", "not reported", None),
    ("", "not reported", None),
    ("not read", "not read", None),
    ("full text not read", "not read", None),
    ("nausea (1 patient)", "assessed, event", 1),
    ("1 (vivid dreams)", "assessed, event", 1),
    ("headache in 2 of 5 patients", "assessed, event", 2),
    ("nausea (1 patient); insomnia (1 patient)", "assessed, event", 2),
    ("mild nausea", "assessed, event", None),  # a named event, no count
])
def test_adverse_event_vocabulary(text, status, events):
    reading = clinical.classify_adverse_events(text)
    assert (reading.status, reading.events) == (status, events)
    assert reading.unrecognised == ()


@pytest.mark.parametrize("text", ["satisfactory tolerance", "well tolerated", "no nausea"])
def test_unrecognised_adverse_event_wording_is_not_reported_and_listed(text):
    reading = clinical.classify_adverse_events(text)
    assert reading.status == "not reported" and reading.unrecognised
    frame = pd.DataFrame({"report_id": ["X1"], "drug": ["naltrexone"], "n_treated": ["4"], "adverse_events": [text]})
    s = clinical.safety(frame, "naltrexone")
    assert s.not_reported_patients == 4 and s.assessed_patients == 0
    assert s.unrecognised[0].report_id == "X1" and s.ci95 is None
    notes = prose.safety_notes(s)
    assert any("not recognised" in n for n in notes) and any("no interval" in n for n in notes)
    assert "says nothing" in whole(prose.safety_sentence(s)) or "say nothing" in prose.safety_sentence(s)


# --- parsers on strings: time to first improvement ------------------------------------------------------


@pytest.mark.parametrize("text, kind, reason, days", [
    ("healing began 1-2 weeks", "first improvement", "onset stated", (7, 14)),
    ("healing began after 14 days", "first improvement", "onset stated", (14, 14)),
    ("clear improvement day 8", "first improvement", "day of improvement stated", (8, 8)),
    ("improvement first seen at 3 weeks", "first improvement", "onset stated", (21, 21)),
    ("within 2 months", "upper bound", "within", (0, 60)),
    ("by day 10", "upper bound", "within", (0, 10)),
    ("assessed at 18 months", "upper bound", "assessment time", (0, 540)),
    ("response at week 4", "upper bound", "assessment time", (0, 28)),
    ("clearing at 6 weeks", "upper bound", "clearing time", (0, 42)),
    ("26 days to documented improvement", "upper bound", "first documented visit", (0, 26)),
    ("26 days", "upper bound", "first documented visit", (0, 26)),  # a bare time: when it was documented
    ("two weeks", "upper bound", "first documented visit", (0, 14)),
])
def test_time_to_response_rules(text, kind, reason, days):
    parsed = clinical.parse_time_to_response(text)
    assert (parsed.status, parsed.kind, parsed.reason, parsed.days) == ("parsed", kind, reason, days)


@pytest.mark.parametrize("text, context, reason", [
    ("1 month", [">70% reduction in skin lesions at 1 month (stated for all three); effect maintained"],
     "assessment time"),
    ("6 weeks", ["complete clearing", "clearing at 6 weeks"], "clearing time"),
    ("26 days", ["significant clinical improvement", "26 days to documented improvement"], "first documented visit"),
    ("2 weeks", ["complete remission within two weeks"], "within"),
    ("3 weeks", ["complete clearance at 3 weeks"], "clearing time"),
    ("3 weeks", ["clearance at 6 weeks"], "first documented visit"),  # another time marks nothing here
])
def test_a_bare_time_is_read_from_the_wording_that_states_the_same_time(text, context, reason):
    parsed = clinical.parse_time_to_response(text, context)
    assert (parsed.kind, parsed.reason) == ("upper bound", reason)
    assert parsed.days[0] == 0 and parsed.stated_days[0] == parsed.days[1]


@pytest.mark.parametrize("text, status", [
    ("visits every 2-3 months (Jan 2016 - Jan 2017)", "follow-up time"),
    ("sustained over 4 months", "follow-up time"),
    ("4 months drug-free on the topical cream", "follow-up time"),
    ("maintenance ongoing at report", "follow-up time"),
    ("not stated", "not stated"),
    ("", "not stated"),
    ("soon after starting", "not stated"),
])
def test_follow_up_wording_is_not_a_time_to_response(text, status):
    parsed = clinical.parse_time_to_response(text)
    assert parsed.status == status and parsed.days is None and parsed.kind is None


@pytest.mark.parametrize("text, days", [
    ("resolution within 2 months; total follow-up not stated", (0, 60)),
    ("clearing at 6 weeks", (0, 42)),
    ("26 days to documented improvement", (0, 26)),
    ("complete remission within 2 weeks", (0, 14)),
    ("assessed at 3 months", (0, 90)),
    ("7 months", None),  # a bare duration in a follow-up note is not a time to response
    ("3 months (2 patients) and 6 weeks (1 patient)", None),
])
def test_report_level_notes_need_a_response_word_or_an_assessment(text, days):
    assert clinical.parse_time_to_response(text, bare_duration=False).days == days


# --- parsers on strings: follow-up ---------------------------------------------------------------------


@pytest.mark.parametrize("text, kinds, days", [
    ("18 months", [("on treatment", 540)], 540),
    ("P1 18 months; P2 2 months plus 1 month after restart",
     [("on treatment", 540), ("on treatment", 60), ("on treatment", 30)], 540),
    ("3-month overlap + 4 months naltrexone-free", [("on treatment", 90), ("off drug", 120)], 90),
    ("4 months drug-free on the topical cream", [("off drug", 120)], None),
    ("visits every 2-3 months (Jan 2016 - Jan 2017)", [("study window", 360)], None),
    ("visits every 2-3 months, Jan 2016-Jan 2017", [("not stated", None), ("study window", 360)], None),
    ("clearing at 6 weeks", [("time to response only", 42)], 42),
    ("26 days to documented improvement", [("time to response only", 26)], 26),
    ("resolution within 2 months; total follow-up not stated",
     [("time to response only", None), ("not stated", None)], None),
    ("assessed at 3 months", [("on treatment", 90)], 90),
    ("maintenance ongoing at report", [("not stated", None)], None),
    ("3 months (2 patients) and 6 weeks (1 patient)", [("on treatment", 90), ("on treatment", 42)], 90),
    ("study period 2019-2021", [("study window", 720)], None),
])
def test_followup_rules(text, kinds, days):
    assert [(c.kind, c.days) for c in clinical.read_followup(text)] == kinds
    assert clinical.followup_length(text) == days


def test_followup_parts_name_or_count_their_patients():
    pieces = clinical.read_followup("P1 18 months; P2 2 months plus 1 month after restart")
    assert [c.patient_id for c in pieces] == ["P1", "P2", "P2"] and pieces[1].part == pieces[2].part
    assert wording.documented([c for c in pieces if c.patient_id == "P2"]) == ("on treatment", 90)
    counted = clinical.read_followup("3 months for two patients, 6 weeks for one (which one not stated)")
    assert [(c.patients, c.days) for c in counted] == [(2, 90), (1, 42)]
    assert [c.patients for c in clinical.read_followup("followed for 9 months")] == [None]


# --- parsers on strings: dechallenge and rechallenge ---------------------------------------------------


@pytest.mark.parametrize("text, status, on", [
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
def test_flare_vocabulary(text, status, on):
    assert clinical.classify_flare(text)[:2] == (status, on)


@pytest.mark.parametrize("texts, status", [
    (["remission on 5 mg/day; relapse on stopping; improved again on restart"], "positive"),
    (["flares on stopping cleared within days of rechallenge"], "positive"),
    (["relapsed on stopping and remitted again on restarting."], "positive"),
    (["complete resolution on 12.5 mg; after restart at 4.5 mg improving more slowly at 1 month"], "slower"),
    (["clearance maintained on LDN; flares when dose lowered"], "not reported"),
])
def test_rechallenge_vocabulary(texts, status):
    assert clinical.classify_rechallenge(texts)[0] == status


# --- E13 safety: the shipped data ----------------------------------------------------------------------


def test_safety_counts_only_reports_that_state_every_event(harms):
    statuses = {r.report_id: (r.status, r.patients) for r in harms.reports}
    assert {rid for rid, (s, _) in statuses.items() if s == "assessed, none"} == {
        "Ibrahim2017", "Sonthalia2019", "Moulin2019", "Grolleau2020"}
    assert statuses["Kollman2018"] == ("none significant", 1)
    assert statuses["Cao2018"] == ("not read", 3) and statuses["JasansBarcelo2020"] == ("not read", 8)
    assert (harms.assessed_patients, harms.reports_assessed, harms.patients_with_events) == (9, 4, 0)
    assert (harms.none_significant_patients, harms.significant_assessed_patients) == (1, 10)
    assert (harms.not_read_patients, harms.not_reported_patients, harms.patients_included) == (11, 22, 43)
    assert harms.unrecognised == ()


def test_safety_interval_and_posterior_over_the_nine(harms):
    assert harms.ci95[0] == 0 and harms.ci95[1] == pytest.approx(1 - 0.025 ** (1 / 9))
    assert harms.ci95[1] == pytest.approx(0.336, abs=5e-4)
    assert harms.significant_ci95[1] == pytest.approx(1 - 0.025 ** (1 / 10))
    assert isinstance(harms.posterior, Estimate) and harms.prior == "Beta(0.5, 0.5)"
    assert harms.posterior.mean == pytest.approx(0.5 / 10)  # Beta(0.5, 9.5)
    assert harms.posterior.hi > harms.upper95_one_sided > harms.posterior.median
    uniform = clinical.safety(load_evidence(REPORTS).frame, "naltrexone", prior=(1, 1))
    assert uniform.prior == "Beta(1, 1)" and uniform.posterior.mean == pytest.approx(1 / 11)


def test_safety_reporting_bias_for_grade(harms):
    bias = harms.reporting_bias
    assert (bias.outcome, bias.direction) == ("adverse_events", "toward_safe") and "under-reported" in bias.mechanism


def test_safety_naloxone(reports):
    s = clinical.safety(reports, "naloxone")
    assert (s.assessed_patients, s.patients_with_events, s.not_reported_patients) == (2, 0, 0)
    assert [r.report_id for r in s.reports] == ["Zheng2025"]
    sentence = whole(prose.safety_sentence(s))
    assert "2 of 2 patients (1 of 1 report)" in sentence and "up to 84%" in sentence


def test_safety_sentence_shipped(harms):
    sentence = whole(prose.safety_sentence(harms))
    assert sentence.startswith("Adverse events were assessed in 9 of 43 patients (4 of 12 reports); none was "
                               "recorded. 0 of 9 is compatible with a risk of up to 34% (exact 95% upper bound): "
                               "these data cannot rule out common side effects")
    assert "Kollman2018 (1 patient) states only that no significant adverse event occurred" in sentence
    assert "none in 10 patients" in sentence and "not as free of any event" in sentence
    assert "Cao2018 and JasansBarcelo2020 (11 patients) was not read for harms" in sentence
    assert "5 reports (22 patients) do not report on harms" in sentence
    assert sentence.endswith("under-reported in case reports, which biases these counts toward “safe”.")


# --- E13 safety: another data set ---------------------------------------------------------------------


def test_safety_on_another_data_set(other):
    s = clinical.safety(other[0], "dapsone")
    assert [(r.report_id, r.status) for r in s.reports] == [
        ("Okafor2031", "assessed, event"), ("Lindqvist2032", "none significant"), ("Tanaka2033", "not read"),
        ("Mbeki2035", "assessed, none")]
    assert (s.assessed_patients, s.patients_with_events, s.reports_assessed) == (7, 1, 2)
    assert (s.significant_assessed_patients, s.not_read_patients, s.not_reported_patients) == (8, 2, 0)
    assert s.ci95 == (pytest.approx(0.003610, abs=1e-6), pytest.approx(0.578723, abs=1e-6))
    assert s.posterior.mean == pytest.approx(1.5 / 8)  # Beta(1.5, 6.5)
    sentence = whole(prose.safety_sentence(s))
    assert sentence.startswith("Adverse events were assessed in 7 of 14 patients (2 of 4 reports); 1 had an "
                               "event (nausea). 1 of 7 is compatible with a risk between 0.36% and 58%")
    assert "Lindqvist2032 (5 patients) states only that no significant adverse event occurred" in sentence
    assert "The full text of Tanaka2033 (2 patients) was not read for harms." in sentence


def test_safety_on_small_table():
    s = clinical.safety(small_reports(), "naltrexone")
    assert (s.assessed_patients, s.patients_with_events, s.not_reported_patients) == (5, 1, 5)
    assert [(r.report_id, r.status) for r in s.reports] == [
        ("A2030", "assessed, event"), ("B2031", "not reported"), ("C2032", "assessed, none")]
    assert s.ci95 == (pytest.approx(0.005051, abs=1e-6), pytest.approx(0.716418, abs=1e-6))
    assert whole(prose.safety_sentence(s)).startswith(
        "Adverse events were assessed in 5 of 10 patients (2 of 3 reports); 1 had an event (nausea). 1 of 5 is "
        "compatible with a risk between 0.51% and 72% (exact 95% interval): these data cannot rule out common "
        "side effects (1 patient in 10 or more). 1 report (5 patients) does not report on harms.")


def test_named_event_without_a_count_is_left_out_of_the_risk_and_said():
    frame = pd.DataFrame({"report_id": ["X1", "X2"], "drug": ["naltrexone"] * 2, "n_treated": ["3", "6"],
                          "adverse_events": ["vivid dreams", "0 (none)"]})
    s = clinical.safety(frame, "naltrexone")
    assert s.assessed_patients == 9 and s.event_count_unknown_patients == 3 and s.patients_with_events == 0
    assert s.ci95[1] == pytest.approx(1 - 0.025 ** (1 / 6))  # over the 6 with a known count
    assert any("X1 names an event" in n for n in prose.safety_notes(s))
    sentence = whole(prose.safety_sentence(s))
    assert "events were named (vivid dreams): 0 of the patients with a count given had one" in sentence
    assert "unknown number of 3 patients" in sentence and "0 of 6 is compatible" in sentence


def test_more_events_than_patients_are_capped_and_said():
    frame = pd.DataFrame({"report_id": ["X1"], "drug": ["naltrexone"], "n_treated": ["2"],
                          "adverse_events": ["nausea (2 patients); headache (1 patient)"]})
    s = clinical.safety(frame, "naltrexone")
    assert s.patients_with_events == 2 and s.reports[0].events_stated == 3
    assert any("3 events in 2 patients" in n for n in prose.safety_notes(s))


# --- E2 time to first improvement: the shipped data ----------------------------------------------------


def test_shipped_times_per_patient(naltrexone):
    read = {(t.report_id, t.patient_id): (t.kind, t.reason, t.days) for t in naltrexone.time_to_response
            if t.status == "parsed"}
    first = ("first improvement", "onset stated")
    assert read == {
        ("Albers2017", "P1"): (*first, (7, 14)), ("Albers2017", "P2"): (*first, (7, 14)),
        ("Albers2017", "P3"): (*first, (7, 14)),
        ("Cao2018", "P1"): ("upper bound", "assessment time", (0, 540)),
        ("Cao2018", "P2"): ("upper bound", "within", (0, 60)),
        ("GarayarCantero2019", "P1"): ("upper bound", "clearing time", (0, 42)),
        ("Moulin2019", "P1"): ("upper bound", "assessment time", (0, 30)),
        ("Moulin2019", "P2"): ("upper bound", "assessment time", (0, 30)),
        ("Moulin2019", "P3"): ("upper bound", "assessment time", (0, 30)),
        ("JasansBarcelo2020", None): ("upper bound", "assessment time", (0, 90)),
        ("McBride2020", "P1"): ("upper bound", "first documented visit", (0, 26)),
        ("Grolleau2020", "P1"): ("first improvement", "day of improvement stated", (8, 8)),
        ("Grolleau2020", "P2"): (*first, (14, 14)),
    }
    jasans = next(t for t in naltrexone.time_to_response if t.report_id == "JasansBarcelo2020")
    assert jasans.patients == 7  # its responders, not its 8 treated
    moulin = next(t for t in naltrexone.time_to_response if t.report_id == "Moulin2019")
    assert moulin.wording == "1 month" and "at 1 month" in moulin.marked_by
    assert {t.report_id for t in naltrexone.time_to_response if t.status != "parsed"} == {
        "Ibrahim2017", "Cao2018", "Kollman2018", "Sonthalia2019", "Gavali2024", "Series14_Menta2024"}


def test_only_albers_and_grolleau_state_a_time_of_first_improvement(naltrexone):
    t = naltrexone.time_to_first_improvement
    assert t.first_improvement_reports == ("Albers2017", "Grolleau2020")
    assert (t.first_improvement_patients, t.first_improvement_days) == (5, (7, 14))
    assert t.upper_bound_reports == ("Cao2018", "GarayarCantero2019", "Moulin2019", "JasansBarcelo2020",
                                     "McBride2020")
    assert (t.upper_bound_patients, t.upper_bound_days) == (14, (26, 540))
    assert t.upper_bound_reasons == {"assessment time": 11, "within": 1, "clearing time": 1,
                                     "first documented visit": 1}
    assert (t.responders, t.not_stated_patients) == (36, 17)
    assert (t.largest_first_improvement_days, t.largest_upper_bound_days) == (14, 540)


def test_how_soon_never_calls_an_upper_bound_a_first_improvement(naltrexone):
    sentence = whole(prose.how_soon(naltrexone))
    first, _, rest = sentence.partition(";")
    assert first == ("How soon: improvement was first seen between 7 and 14 days after starting in 5 patients "
                     "(2 reports)")
    assert "14 patients (5 reports) are described only as improved by a time from 26 days to 18 months" in rest
    assert "11 at an assessment" in rest and "which bounds when improvement began from above" in rest
    assert rest.endswith("no time is stated for 17 of the 36 responders.")


def test_naloxone_times(reports, patients):
    d = clinical.durability(reports, patients, "naloxone")
    assert [(t.patient_id, t.kind, t.reason, t.days) for t in d.time_to_response] == [
        ("P1", "upper bound", "within", (0, 14)), ("P2", "upper bound", "within", (0, 14))]
    assert whole(prose.how_soon(d)).startswith("How soon: no report states when improvement began; 2 patients "
                                               "(1 report) are described only as improved by 2 weeks after starting")


# --- E2 time to first improvement: another data set ----------------------------------------------------


def test_times_on_another_data_set(dapsone):
    read = {(t.report_id, t.patient_id): (t.kind, t.reason, t.days, t.patients) for t in dapsone.time_to_response}
    assert read == {
        ("Okafor2031", "P1"): ("first improvement", "onset stated", (10, 10), 1),
        ("Okafor2031", "P2"): ("upper bound", "clearing time", (0, 21), 1),
        ("Okafor2031", "P3"): (None, None, None, 1),
        ("Lindqvist2032", None): ("upper bound", "assessment time", (0, 56), 4),
        ("Tanaka2033", None): (None, None, None, 2),
        ("Mbeki2035", None): ("upper bound", "within", (0, 42), 3),
    }  # Okafor2031 P4 did not respond: no time to response
    t = dapsone.time_to_first_improvement
    assert (t.first_improvement_patients, t.upper_bound_patients, t.not_stated_patients, t.responders) == (1, 8, 3, 12)
    assert (t.largest_first_improvement_days, t.largest_upper_bound_days) == (10, 56)
    assert whole(prose.how_soon(dapsone)) == (
        "How soon: improvement was first seen 10 days after starting in 1 patient (1 report); 8 patients (3 reports) "
        "are described only as improved by a time from 3 weeks to 8 weeks after starting (4 at an assessment, 3 "
        "“within” a time, 1 at clearing), which bounds when improvement began from above; no time is stated for 3 "
        "of the 12 responders.")


def test_times_on_small_table_without_patients():
    d = clinical.durability(small_reports(), None, "naltrexone")
    times = {t.report_id: t for t in d.time_to_response}
    assert set(times) == {"A2030", "B2031", "C2032"}
    assert (times["A2030"].days, times["A2030"].reason, times["A2030"].patients) == ((0, 21), "within", 2)
    assert (times["B2031"].days, times["B2031"].reason) == ((0, 28), "assessment time")
    assert (times["C2032"].days, times["C2032"].reason) == ((0, 60), "assessment time")
    assert d.time_to_first_improvement.first_improvement_patients == 0
    assert any("no per-patient table" in n for n in prose.durability_notes(d))


# --- E1 follow-up: the shipped data --------------------------------------------------------------------


def test_followup_per_patient_shipped(naltrexone):
    f = naltrexone.followup
    by = {e.label: (e.kind, e.days) for e in f.entries}
    assert by["Cao2018 P1"] == ("on treatment", 540) and by["Cao2018 P2"] == ("on treatment", 90)
    assert by["Cao2018 P3"] == ("not stated", None)
    assert by["2 patients of Moulin2019"] == ("on treatment", 90)
    assert by["1 patient of Moulin2019"] == ("on treatment", 42)
    assert by["Grolleau2020 P1"] == ("on treatment", 42) and by["Grolleau2020 P2"] == ("on treatment", 90)
    assert by["GarayarCantero2019 P1"] == ("time to response only", 42)
    assert by["McBride2020 P1"] == ("time to response only", 26)
    assert by["Ibrahim2017 P1"] == ("study window", None) and by["Sonthalia2019 P1"] == ("on treatment", 90)
    assert by["Albers2017 P1"] == ("time to response only", None)  # "within 2 months" documents no time
    assert by["8 patients of JasansBarcelo2020"] == ("on treatment", 90)
    assert by["14 patients of Series14_Menta2024"] == ("not stated", None)
    assert sum(e.patients for e in f.entries) == 43


def test_followup_summary_shipped(naltrexone):
    f = naltrexone.followup
    assert (f.shortest_days, f.shortest_at, f.longest_days, f.longest_at) == (26, ("McBride2020 P1",), 540,
                                                                              ("Cao2018 P1",))
    assert f.reports_under_short == 4
    assert set(f.reports_under_short_ids) == {"GarayarCantero2019", "McBride2020", "Moulin2019", "Grolleau2020"}
    assert (f.patients_long, f.patients_long_at) == (1, ("Cao2018 P1",))
    assert f.study_windows == {"Ibrahim2017": 360} and f.off_drug == {"Sonthalia2019": 120}
    assert f.response_time_only_reports == ("GarayarCantero2019", "McBride2020")
    assert (f.patients_documented, f.reports_documented, f.not_stated_patients) == (21, 8, 22)


def test_followup_sentence_shipped(naltrexone):
    sentence = whole(prose.followup_sentence(naltrexone.followup))
    assert sentence.startswith(
        "Follow-up on the drug is documented for 21 of 43 patients (8 of 12 reports) and ranges from 26 days to "
        "18 months. At least one patient was followed for under 3 months in 4 of 12 reports (GarayarCantero2019, "
        "Moulin2019, McBride2020 and Grolleau2020). Follow-up of 6 months or more on the drug is documented for "
        "1 patient (Cao2018 P1), plus Ibrahim2017's 12-month study window")
    assert ("For GarayarCantero2019 and McBride2020 the only documented time on the drug is a time to response"
            in sentence)
    assert "Time off the drug is not counted (Sonthalia2019: 4 months)." in sentence


# --- E1 follow-up: another data set --------------------------------------------------------------------


def test_followup_on_another_data_set(dapsone):
    f = dapsone.followup
    assert [(e.label, e.kind, e.days, e.source) for e in f.entries] == [
        ("Okafor2031 P1", "on treatment", 270, "patients.followup"),
        ("Okafor2031 P2", "on treatment", 270, "patients.followup"),
        ("Okafor2031 P3", "on treatment", 35, "patients.followup"),
        ("Okafor2031 P4", "on treatment", 270, "reports.followup_note"),
        ("5 patients of Lindqvist2032", "on treatment", 56, "reports.followup_note"),
        ("2 patients of Tanaka2033", "off drug", None, "reports.followup_note"),
        ("3 patients of Mbeki2035", "on treatment", 420, "reports.followup_note"),
    ]
    assert (f.shortest_days, f.longest_days, f.reports_under_short_ids) == (35, 420, ("Okafor2031", "Lindqvist2032"))
    assert (f.patients_long, f.study_windows, f.off_drug) == (6, {"Lindqvist2032": 720}, {"Tanaka2033": 90})
    sentence = whole(prose.followup_sentence(f))
    assert sentence.startswith(
        "Follow-up on the drug is documented for 12 of 14 patients (3 of 4 reports) and ranges from 5 weeks to "
        "14 months. At least one patient was followed for under 3 months in 2 of 4 reports (Okafor2031 and "
        "Lindqvist2032). Follow-up of 6 months or more on the drug is documented for 6 patients (Okafor2031 P1, "
        "Okafor2031 P2, Okafor2031 P4 and 3 patients of Mbeki2035), plus Lindqvist2032's 24-month study window")
    assert "Time off the drug is not counted (Tanaka2033: 3 months)." in sentence


def test_followup_on_small_table():
    f = clinical.followup(small_reports(), None, "naltrexone")
    assert [(e.report_id, e.kind, e.days, e.patients) for e in f.entries] == [
        ("A2030", "on treatment", 270, 3), ("B2031", "on treatment", 28, 5), ("C2032", "on treatment", 60, 2)]
    assert f.reports_under_short_ids == ("B2031", "C2032") and f.patients_long == 3


# --- loss on treatment, dechallenge, rechallenge -------------------------------------------------------


def test_loss_on_treatment_series14(naltrexone):
    loss = naltrexone.loss_on_treatment
    assert loss.reports_with_loss == ("Series14_Menta2024",) and loss.lost == 6
    assert (loss.reports_graded, loss.responders_graded) == (7, 25)
    row = next(r for r in loss.reports if r.report_id == "Series14_Menta2024")
    assert (row.n_any_response, row.n_sustained, row.lost) == (8, 2, 6)
    assert "relapsed on treatment" in row.response_wording
    assert "Cao2018" not in [r.report_id for r in loss.reports]  # blank sustained: not graded


def test_dechallenge_and_rechallenge_shipped(naltrexone):
    by = {r.report_id: r for r in naltrexone.dechallenge.reports}
    assert (by["Albers2017"].dechallenge, by["Albers2017"].rechallenge, by["Albers2017"].patients) == (
        "positive", "positive", 1)  # one patient, not three: the series-level wording
    assert by["Albers2017"].counted_from == "series statement"
    assert (by["Sonthalia2019"].dechallenge, by["Sonthalia2019"].rechallenge) == ("positive", "positive")
    assert (by["Cao2018"].dechallenge, by["Cao2018"].rechallenge, by["Cao2018"].patients) == ("positive", "slower", 1)
    assert (by["Kollman2018"].dechallenge, by["Kollman2018"].on) == ("positive", "dose reduction")
    assert by["Gavali2024"].dechallenge == "no flare on treatment (not a dechallenge)"
    for rid in ("Ibrahim2017", "GarayarCantero2019", "Moulin2019", "JasansBarcelo2020", "McBride2020",
                "Grolleau2020", "Series14_Menta2024"):
        assert by[rid].dechallenge == "not tried or not reported" and by[rid].rechallenge == "not reported"
    assert "for the series" in by["Albers2017"].wording
    assert any(n.startswith("Albers2017") and "1 patient" in n for n in prose.durability_notes(naltrexone))
    totals = naltrexone.dechallenge.totals
    assert (totals.reports_positive_dechallenge, totals.patients_positive_dechallenge) == (4, 4)
    assert (totals.reports_positive_dechallenge_rechallenge, totals.patients_positive_dechallenge_rechallenge) == (2, 2)


def test_dechallenge_on_another_data_set(dapsone):
    by = {r.report_id: r for r in dapsone.dechallenge.reports}
    assert by["Okafor2031"].dechallenge == "negative"
    assert (by["Lindqvist2032"].dechallenge, by["Lindqvist2032"].patients, by["Lindqvist2032"].counted_from,
            by["Lindqvist2032"].rechallenge) == ("positive", 2, "report count", "positive")
    assert by["Tanaka2033"].dechallenge == by["Mbeki2035"].dechallenge == "not tried or not reported"
    assert dapsone.loss_on_treatment.reports_with_loss == ("Okafor2031",) and dapsone.loss_on_treatment.lost == 1


# --- the sentences together ----------------------------------------------------------------------------


def test_durability_sentences_shipped(naltrexone):
    sentences = [whole(s) for s in prose.durability_sentences(naltrexone)]
    assert len(sentences) == 4
    assert "between 7 and 14 days" in sentences[0] and "42" not in sentences[0].partition(";")[0]
    assert "6 of 25 responders" in sentences[1] and "Series14_Menta2024" in sentences[1]
    assert "4 of 12 reports (4 patients" in sentences[2] and "2 of them (2 patients)" in sentences[2]
    assert sentences[3].startswith("How long: follow-up on the drug is documented for 21 of 43 patients")
    assert sentences[3].endswith("How long the response lasts beyond that, on or off the drug, is not known.")


def test_durability_sentences_on_another_data_set(dapsone):
    s = [whole(x) for x in prose.durability_sentences(dapsone)]
    assert "in the 2 reports that grade it, 1 of 6 responders lost the response" in s[1] and "Okafor2031" in s[1]
    assert "1 of 4 reports (2 patients)" in s[2] and "1 describes stopping without a flare" in s[2]
    assert "2 do not say whether stopping was tried" in s[2]


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"report_id": ["Z1"], "drug": ["naltrexone"], "n_treated": ["2"], "n_any_response": ["1"]}),
    pd.DataFrame({"report_id": ["Z1", "Z2"], "drug": ["naltrexone"] * 2, "n_treated": ["2", "3"],
                  "n_any_response": ["1", "0"], "adverse_events": ["not read", "none significant"],
                  "followup_note": ["not stated", "4 months off treatment"]}),
    pd.DataFrame({"report_id": ["Z1"], "drug": ["naloxone"], "n_treated": ["2"], "n_any_response": ["2"]}),
    pd.DataFrame({"report_id": ["Z1"], "drug": ["naltrexone"], "n_treated": ["1"], "n_any_response": ["1"],
                  "n_sustained": ["1"], "adverse_events": ["0 (none)"], "followup_note": ["followed 8 months"],
                  "withdrawal_flare": ["no"]}),
    pd.DataFrame({"report_id": ["Z1"], "drug": ["naltrexone"], "n_treated": ["3"], "n_any_response": ["0"],
                  "n_sustained": ["0"], "followup_note": ["Jan 2019 - Jun 2019"]}),
], ids=["missing columns", "nothing assessed", "no report of the drug", "one report", "no responder"])
def test_every_branch_gives_whole_sentences(frame):
    s = clinical.safety(frame, "naltrexone")
    d = clinical.durability(frame, None, "naltrexone")
    for sentence in (prose.safety_sentence(s), *prose.durability_sentences(d), prose.followup_sentence(d.followup)):
        whole(sentence)
    json.dumps(s.to_dict()), json.dumps(d.to_dict())


def test_branch_wording():
    missing = pd.DataFrame({"report_id": ["Z1"], "drug": ["naltrexone"], "n_treated": ["2"], "n_any_response": ["1"]})
    s = clinical.safety(missing, "naltrexone")
    assert not s.column_present and any("not available" in n for n in prose.safety_notes(s)) and s.ci95 is None
    assert prose.safety_sentence(s).startswith("The report (2 patients) on naltrexone does not state whether any "
                                               "adverse event occurred")
    d = clinical.durability(missing, None, "naltrexone")
    assert d.time_to_response[0].status == "not stated" and d.loss_on_treatment.reports_graded == 0
    assert prose.how_soon(d) == "How soon: no time to first improvement is stated for the one responder (1 report)."
    assert prose.followup_sentence(d.followup) == ("The report does not document how long any patient was followed "
                                                   "on the drug.")
    none = clinical.durability(missing, None, "naloxone")
    assert prose.how_soon(none) == "How soon: no report."
    assert prose.on_stopping(none.dechallenge) == "On stopping: no report."
    assert prose.safety_sentence(clinical.safety(missing, "naloxone")).startswith("No included report of naloxone")
    two = pd.DataFrame({"report_id": ["Z1", "Z2"], "drug": ["naltrexone"] * 2, "n_treated": ["2", "3"],
                        "n_any_response": ["1", "0"], "n_sustained": ["1", "0"], "followup_note": ["", "8 months"]})
    assert prose.safety_sentence(clinical.safety(two, "naltrexone")).startswith(
        "None of the 2 reports (5 patients) on naltrexone states whether any adverse event occurred")
    assert prose.followup_sentence(clinical.followup(two.iloc[:1], None, "naltrexone")).startswith(
        "The report does not document how long")
    assert prose.followup_sentence(clinical.followup(two.assign(followup_note=""), None, "naltrexone")).startswith(
        "None of the 2 reports documents how long any patient was followed on the drug.")
    assert prose.followup_sentence(clinical.followup(two, None, "naltrexone")).startswith(
        "Follow-up on the drug is documented for 3 of 5 patients (1 of 2 reports): 8 months for each.")
    assert prose.how_lasting(clinical.loss_on_treatment(two, "naltrexone")) == (
        "How lasting: in the 2 reports that grade it, the one responder still had the response at the last "
        "follow-up on the drug.")
    assert prose.how_lasting(clinical.loss_on_treatment(two.iloc[1:], "naltrexone")) == (
        "How lasting: in the 1 report that grades it, no patient responded.")
    window = pd.DataFrame({"report_id": ["W1"], "drug": ["naltrexone"], "n_treated": ["3"],
                           "followup_note": ["Jan 2019 - Jun 2019"]})
    assert prose.followup_sentence(clinical.followup(window, None, "naltrexone")) == (
        "The report does not document how long any patient was followed on the drug. W1's 5-month study window "
        "gives only the study's dates, not each patient's time on the drug.")


# --- typed results and their keys ----------------------------------------------------------------------


def test_to_dict_keys_are_stable_and_json(harms, naltrexone):
    s = json.loads(json.dumps(harms.to_dict()))
    assert {"assessed_patients", "patients_with_events", "not_reported_patients", "not_read_patients",
            "none_significant_patients", "significant_assessed_patients", "ci95", "posterior", "reports",
            "unrecognised", "reporting_bias"} <= set(s)
    assert {"mean", "median", "ci95", "prior", "upper95_one_sided"} <= set(s["posterior"])
    assert s["posterior"]["prior"] == "Beta(0.5, 0.5)" and s["ci95"] == [0.0, 0.336267]
    assert {"report_id", "patients", "status", "wording", "events"} <= set(s["reports"][0])
    d = json.loads(json.dumps(naltrexone.to_dict()))
    assert d["loss_on_treatment"]["lost"] == 6 and d["loss_on_treatment"]["responders_graded"] == 25
    assert d["dechallenge"]["totals"]["patients_positive_dechallenge_rechallenge"] == 2
    assert {"report_id", "patient_id", "patients", "status", "kind", "reason", "days", "wording"} <= set(
        d["time_to_response"][0])
    assert d["time_to_first_improvement"]["largest_upper_bound_days"] == 540
    assert d["followup"]["reports_under_short"] == 4 and d["followup"]["longest_days"] == 540
    assert {"label", "kind", "days", "clauses"} - {"label"} <= set(d["followup"]["entries"][0])


def test_results_are_frozen(harms, naltrexone):
    for result in (harms, naltrexone, naltrexone.followup, naltrexone.time_to_first_improvement):
        with pytest.raises(AttributeError):
            result.drug = "x"  # type: ignore[misc]
    assert isinstance(naltrexone.followup, Followup)
    assert isinstance(naltrexone.time_to_first_improvement, TimeToFirstImprovement)


def test_prose_imports_only_the_standard_library_and_results():
    """The rendering floor: sentences never load pandas, numpy, the steps, the inputs or the models."""
    tree = ast.parse((ROOT / "analysis" / "report" / "prose" / "clinical.py").read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    for name in names:
        assert name == "__future__" or name.startswith("analysis.results") or not re.match(
            r"(pandas|numpy|scipy|analysis|models)\b", name), name


def test_computation_modules_make_no_sentences():
    for module in ("__init__", "wording", "safety", "durability"):
        text = (ROOT / "analysis" / "steps" / "clinical" / f"{module}.py").read_text(encoding="utf-8")
        imported = [n.module for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom)]
        assert not any(name.startswith("analysis.report") for name in imported)
        assert "sentence" not in re.sub(r'"""[\s\S]*?"""', "", text)
