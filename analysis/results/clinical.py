"""The clinical read-outs as typed results: what the wording of the reports says about harms, how soon the
response comes, whether it lasts, what stopping does and how long anyone looked.

`analysis.steps.clinical` fills them from the evidence table; `analysis.report.prose.clinical` turns them
into sentences. They hold numbers, labels and the source wording only, never a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.results import Estimate, Result

# --- shared --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unrecognised(Result):
    """A cell no rule of the vocabularies read: listed so that the reader sees what was not counted."""

    report_id: str
    column: str
    wording: str
    patient_id: str | None = None
    unread: tuple[str, ...] = ()
    """The parts of the cell that no rule read (a cell is read part by part, split on ";")."""


# --- adverse events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdverseEventReading(Result):
    """One adverse_events cell as the vocabularies read it.

    `status`: "assessed, none" (no event at all), "assessed, event" (events named), "none significant"
    (no *significant* event: others may have occurred), "not read" (the extractor did not read the full
    text) or "not reported". `events`: patients with an event, 0 for none, None when unknown."""

    status: str
    events: int | None
    event_names: tuple[str, ...]
    unrecognised: tuple[str, ...]


@dataclass(frozen=True)
class ReportSafety(Result):
    """One report's harms: its patients, the status of its wording and the events counted from it."""

    report_id: str
    patients: int
    status: str
    wording: str
    events: int | None
    """Patients with an event as counted (at most `patients`), None when the report gives no count."""
    events_stated: int | None
    """Events as the wording states them (may exceed `patients`: events in one patient are not separable)."""
    event_names: tuple[str, ...]


@dataclass(frozen=True)
class ReportingBias(Result):
    """The outcome-specific direction of reporting bias, for GRADE's publication-bias domain."""

    outcome: str
    mechanism: str
    direction: str


ADVERSE_EVENT_REPORTING = ReportingBias(
    outcome="adverse_events",
    mechanism="adverse events are under-reported in case reports",
    direction="toward_safe",
)


@dataclass(frozen=True)
class Safety(Result):
    """Harms of one drug across its included reports.

    The any-event denominator (`assessed_patients`, `ci95`, `posterior`) holds only the patients of reports
    that state no event at all or name their events; `event_count_unknown_patients` of them are in reports
    that name an event without a count and stay out of the interval and the posterior. Patients whose
    report states only that no significant event occurred count for significant events
    (`significant_assessed_patients`), never as event-free."""

    drug: str
    column_present: bool
    reports_included: int
    patients_included: int
    reports_assessed: int
    assessed_patients: int
    patients_with_events: int
    event_count_unknown_patients: int
    event_names: tuple[str, ...]
    none_significant_patients: int
    significant_assessed_patients: int
    """Patients whose report says whether any significant event occurred: no event at all, or none
    significant (all with no significant event: a report naming events does not say how serious they were
    and is not among them)."""
    significant_ci95: tuple[float, float] | None
    not_read_patients: int
    not_reported_patients: int
    ci95: tuple[float, float] | None
    posterior: Estimate
    prior: str
    upper95_one_sided: float
    """The posterior's one-sided 95% upper bound."""
    reporting_bias: ReportingBias
    reports: tuple[ReportSafety, ...]
    unrecognised: tuple[Unrecognised, ...]

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["posterior"] = {**out["posterior"], "prior": self.prior, "upper95_one_sided": out.pop("upper95_one_sided")}
        del out["prior"]
        return out

    def reports_with(self, status: str) -> tuple[str, ...]:
        return tuple(r.report_id for r in self.reports if r.status == status)


# --- time to first improvement -------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeReading(Result):
    """One time-to-response wording as the rules read it.

    `status`: "parsed", "follow-up time" (a follow-up visit, not a time of response) or "not stated".
    `kind`: "first improvement" (the wording says when improvement began) or "upper bound" (a time by
    which the patient had improved: `reason` "assessment time", "clearing time", "first documented visit"
    or "within"). `days`: the interval that holds the time of first improvement, (0, t) for an upper
    bound; `stated_days`: the time the wording states. `marked_by`: the clause whose wording decided the
    kind (the cell's own, or a clause of the patient's or report's other wording that states the same
    time), "" when nothing marks it."""

    status: str
    kind: str | None = None
    reason: str | None = None
    days: tuple[float, float] | None = None
    stated_days: tuple[float, float] | None = None
    shape: str | None = None
    """"point" (one time) or "range" ("1-2 weeks") of the stated time."""
    marked_by: str = ""


@dataclass(frozen=True)
class TimeToResponse(Result):
    """The time to first improvement of one patient, or of a report's responders where only the report
    states it, with the wording it was read from."""

    report_id: str
    patient_id: str | None
    patients: int
    source: str
    wording: str
    status: str
    kind: str | None
    reason: str | None
    days: tuple[float, float] | None
    stated_days: tuple[float, float] | None
    shape: str | None
    marked_by: str


@dataclass(frozen=True)
class TimeToFirstImprovement(Result):
    """The entries of `TimeToResponse` summed: when improvement began where that is stated, and the upper
    bounds, never mixed. `responders` is every responder an entry covers; `not_stated_patients` have no
    time at all."""

    responders: int
    first_improvement_patients: int
    first_improvement_reports: tuple[str, ...]
    first_improvement_days: tuple[float, float] | None
    """Earliest and latest day of first improvement stated."""
    upper_bound_patients: int
    upper_bound_reports: tuple[str, ...]
    upper_bound_days: tuple[float, float] | None
    """Smallest and largest upper bound."""
    upper_bound_reasons: dict[str, int]
    """Patients per reason of the upper bound."""
    not_stated_patients: int
    largest_first_improvement_days: float | None
    largest_upper_bound_days: float | None


# --- loss on treatment ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportLoss(Result):
    """One report that grades both any response and a sustained response."""

    report_id: str
    n_treated: int | None
    n_any_response: int
    n_sustained: int
    lost: int
    response_wording: str


@dataclass(frozen=True)
class LossOnTreatment(Result):
    """Responders who no longer had the response at the last on-treatment follow-up."""

    reports_graded: int
    responders_graded: int
    lost: int
    reports_with_loss: tuple[str, ...]
    reports: tuple[ReportLoss, ...]


# --- dechallenge and rechallenge -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportChallenge(Result):
    """Whether stopping (or lowering) the drug was followed by a flare and restarting by the response.

    `counted_from`: how `patients` was counted: "patients" (named per patient), "report count" (a count in
    the report's cell), "series statement" or "report statement" (the flare is stated only for the
    series or the report: 1 patient, the least the wording guarantees), or "" when there is no flare."""

    report_id: str
    dechallenge: str
    on: str | None
    rechallenge: str
    patients: int
    rechallenge_patients: int
    dechallenge_rechallenge_patients: int
    counted_from: str
    wording: str


@dataclass(frozen=True)
class ChallengeTotals(Result):
    reports: int
    reports_positive_dechallenge: int
    patients_positive_dechallenge: int
    reports_on_dose_reduction: int
    reports_positive_dechallenge_rechallenge: int
    patients_positive_dechallenge_rechallenge: int
    reports_slower_rechallenge: int
    reports_no_flare_on_treatment: int
    reports_negative_dechallenge: int


@dataclass(frozen=True)
class Dechallenge(Result):
    reports: tuple[ReportChallenge, ...]
    totals: ChallengeTotals
    unrecognised: tuple[Unrecognised, ...]


# --- follow-up -----------------------------------------------------------------------------------------

FOLLOWUP_KINDS = ("on treatment", "time to response only", "study window", "off drug", "not stated")
"""What a follow-up wording documents: time on the drug; only a time to response (the last time on the
drug the report documents); the calendar window of a study (not a patient's time on the drug); time
after stopping the drug; nothing."""


@dataclass(frozen=True)
class FollowupClause(Result):
    """One part of a follow-up wording: what it documents and for how long. Parts joined by "plus" or
    "+" share a `part` number (their times on the drug add up); `patient_id` or `patients` say whom the
    part is about when it says so ("P2 ...", "... (2 patients)")."""

    wording: str
    kind: str
    days: float | None
    part: int
    patient_id: str | None = None
    patients: int | None = None


@dataclass(frozen=True)
class PatientFollowup(Result):
    """The follow-up documented for one patient (or a group of a report's patients whom the wording does
    not name, or a whole report without per-patient rows). `days` is the documented time on the drug
    (kinds "on treatment" and "time to response only"), None otherwise."""

    report_id: str
    patient_id: str | None
    patients: int
    source: str
    wording: str
    kind: str
    days: float | None
    clauses: tuple[FollowupClause, ...]

    @property
    def label(self) -> str:
        """"Cao2018 P1", or "2 patients of Moulin2019" for patients the wording does not name."""
        if self.patient_id:
            return f"{self.report_id} {self.patient_id}"
        return f"{self.patients} patient{'' if self.patients == 1 else 's'} of {self.report_id}"


@dataclass(frozen=True)
class Followup(Result):
    """Follow-up per patient, on the drug, and its summary: the range documented, the reports with a
    patient followed for under `short_months`, the patients with `long_months` or more on the drug;
    study windows and off-drug times apart, by report."""

    entries: tuple[PatientFollowup, ...]
    reports_included: int
    patients_included: int
    reports_documented: int
    patients_documented: int
    shortest_days: float | None
    shortest_at: tuple[str, ...]
    longest_days: float | None
    longest_at: tuple[str, ...]
    short_months: int
    reports_under_short: int
    reports_under_short_ids: tuple[str, ...]
    long_months: int
    patients_long: int
    patients_long_at: tuple[str, ...]
    study_windows: dict[str, float]
    off_drug: dict[str, float]
    response_time_only_reports: tuple[str, ...]
    """Reports whose only documented time on the drug is a time to response."""
    not_stated_patients: int
    month_days: int


# --- everything together -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Durability(Result):
    """How soon the response comes, whether it lasts on the drug, what stopping does, how long anyone
    looked; `reports_included` and `patients_included` are the denominators."""

    drug: str
    reports_included: int
    patients_included: int
    per_patient_table: bool
    time_to_response: tuple[TimeToResponse, ...]
    time_to_first_improvement: TimeToFirstImprovement
    loss_on_treatment: LossOnTreatment
    dechallenge: Dechallenge
    followup: Followup
    month_days: int
    week_days: int

