"""GRADE certainty of the evidence for each outcome the run estimates (summary of findings).

Judgements a reviewer owns are config keys with their reasons (the starting level, indirectness, and
publication bias: case reports are selectively published by design, so the computed analyses support the
judgement rather than detect the bias). The other domains follow rules written out with their thresholds
(`rules`): risk of bias from the appraisal, weighted by patients; inconsistency from whether reports' own
exact intervals exclude the pooled estimate (not from the predictive interval, whose width is mostly the
prior's here); imprecision against a decision threshold and the optimal information size. Each serious
concern lowers the certainty by one level, a very serious one by two.
"""

from __future__ import annotations

from analysis.inputs.config import GradeSettings
from analysis.results import Estimate
from analysis.results.grade import Domain, GradeRow

LEVELS = ("very low", "low", "moderate", "high")
DOWNGRADE = {"not serious": 0, "serious": 1, "very serious": 2, "not assessable": 0}
DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")


def rules(settings: GradeSettings) -> dict[str, str]:
    """The computed rules in words, with the config's thresholds."""
    share = f"{100 * settings.risk_of_bias_high_share:.0f}%"
    return {
        "risk_of_bias": f"very serious when at least {share} of the patients are in reports of high concern; "
                        f"serious when less than {share} are in reports of low concern; otherwise not serious "
                        "(the reconciled appraisal, Murad et al. 2018)",
        "inconsistency": "serious when the exact 95% interval of at least one report of two or more patients "
                         "excludes the pooled estimate; very serious when such reports lie on both sides of it",
        "indirectness": "judgement (config key grade.indirectness)",
        "imprecision": f"against a decision threshold of {settings.decision_threshold:g} for response "
                       f"({settings.harm_threshold:g} for harms): very serious when the 95% interval crosses "
                       f"it; serious when it does not but fewer than {settings.optimal_information_size} "
                       "patients inform the estimate (the optimal information size); otherwise not serious",
        "publication_bias": "judgement (config keys grade.publication_bias and grade.harms_publication_bias), "
                            "with the bias analyses as supporting considerations",
    }


def risk_of_bias(concerns: dict[str, str] | None, patients: dict[str, int], settings: GradeSettings) -> Domain:
    """From the appraisal's overall concern of each report in the estimate, weighted by its patients."""
    if concerns is None:
        return Domain("not assessable", "no risk-of-bias appraisal came with these data")
    total = sum(patients.values())
    if total == 0:
        return Domain("not assessable", "no patient")
    share = {level: sum(n for r, n in patients.items() if concerns.get(r) == level) / total
             for level in ("low", "moderate", "high")}
    words = ", ".join(f"{100 * share[level]:.0f}% {level}" for level in share) + " concern (by patients)"
    missing = [r for r in patients if r not in concerns]
    if missing:
        words += f"; not appraised: {', '.join(missing)}"
    if share["high"] >= settings.risk_of_bias_high_share:
        return Domain("very serious", words)
    if share["low"] < settings.risk_of_bias_high_share:
        return Domain("serious", words)
    return Domain("not serious", words)


def inconsistency(pooled_mean: float | None, report_intervals: dict[str, tuple[int, tuple[float, float]]]) -> Domain:
    """`report_intervals`: {report: (n, exact 95% interval)} of the reports in the estimate."""
    if pooled_mean is None or not report_intervals:
        return Domain("not assessable", "no between-report comparison for this outcome")
    below = [r for r, (n, (lo, hi)) in report_intervals.items() if n >= 2 and hi < pooled_mean]
    above = [r for r, (n, (lo, hi)) in report_intervals.items() if n >= 2 and lo > pooled_mean]
    if below and above:
        return Domain("very serious", f"reports on both sides of the pooled estimate: {', '.join(below + above)}")
    if below or above:
        side = "below" if below else "above"
        return Domain("serious", f"the exact interval of {', '.join(below or above)} lies {side} the pooled "
                                 f"estimate {pooled_mean:.2f}")
    return Domain("not serious", "every series' exact interval includes the pooled estimate")


def imprecision(interval: tuple[float, float], patients: int, threshold: float, settings: GradeSettings) -> Domain:
    lo, hi = interval
    words = f"95% interval {lo:.2f} to {hi:.2f}, decision threshold {threshold:g}, {patients} patients"
    if lo < threshold < hi:
        return Domain("very serious", words + ": the interval crosses the threshold")
    if patients < settings.optimal_information_size:
        return Domain("serious", words + f": fewer than {settings.optimal_information_size} patients")
    return Domain("not serious", words)


def publication_bias(judgement, supporting: tuple[str, ...]) -> Domain:
    return Domain(judgement.judgement, judgement.reason, supporting)


def certainty(domains: dict[str, Domain], settings: GradeSettings) -> str:
    steps = sum(DOWNGRADE[domains[d].judgement] for d in DOMAINS)
    return LEVELS[max(LEVELS.index(settings.start) - steps, 0)]


def row(settings: GradeSettings, condition: str, source: str, estimate: Estimate | None, estimate_reports: int,
        estimate_patients: int, graded_reports: int, graded_patients: int, crude: tuple[int, int],
        domains: dict[str, Domain]) -> GradeRow:
    """One outcome's row: the indirectness judgement of the config (its reason naming the condition),
    the other domains as given, and the certainty they add up to."""
    indirect = settings.indirectness
    named = condition or "the condition"
    domains = {**domains, "indirectness": Domain(indirect.judgement, indirect.reason.replace("{condition}", named))}
    ordered = {d: domains[d] for d in DOMAINS}
    return GradeRow(source, estimate, estimate_reports, estimate_patients, graded_reports, graded_patients,
                    crude[0], crude[1], ordered, certainty(ordered, settings))
