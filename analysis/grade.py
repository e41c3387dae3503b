"""GRADE certainty of the evidence for each outcome the run estimates (Summary of Findings).

The parts that can be computed are computed from the run, each by a rule that is written out with its
thresholds (`rules`); the parts that are judgement (the starting level, indirectness) are config keys
(`[grade]`) with a default and a reason that a reviewer can change. Each serious concern lowers the
certainty by one level, a very serious one by two; publication bias, when strongly suspected, by one.
"""

from __future__ import annotations

from analysis.config import GradeSettings

LEVELS = ("very low", "low", "moderate", "high")
DOWNGRADE = {"not serious": 0, "serious": 1, "very serious": 2, "undetected": 0, "strongly suspected": 1,
             "not assessable": 0}
DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")


def rules(settings: GradeSettings) -> dict[str, str]:
    """The computed rules in words, with the config's thresholds."""
    share = f"{100 * settings.risk_of_bias_high_share:.0f}%"
    serious, very = settings.inconsistency_width
    imp_serious, imp_very = settings.imprecision_width
    return {
        "risk_of_bias": f"very serious when at least {share} of the patients are in reports of high concern; serious "
                        f"when less than {share} are in reports of low concern; otherwise not serious (the "
                        "reconciled appraisal, Murad et al. 2018)",
        "inconsistency": f"serious when the 95% predictive interval for a new report is wider than {serious:g}, "
                         f"very serious when wider than {very:g} (on the probability scale)",
        "indirectness": "judgement (config key grade.indirectness)",
        "imprecision": f"serious when the 95% interval of the pooled estimate is wider than {imp_serious:g}, very "
                       f"serious when wider than {imp_very:g}",
        "publication_bias": "strongly suspected when the small-study slope on report size is negative with "
                            f"posterior probability at least {settings.publication_slope_probability:g}, or when "
                            "publication of all-responder reports (omega = 0.5) lowers the pooled mean by more than "
                            f"{settings.publication_shift:g}; otherwise undetected",
    }


def risk_of_bias(concerns: dict[str, str] | None, patients: dict[str, int], settings: GradeSettings) -> dict:
    """From the appraisal's overall concern of each report in the estimate, weighted by its patients."""
    if concerns is None:
        return {"judgement": "not assessable", "reason": "no risk-of-bias appraisal came with these data"}
    missing = [r for r in patients if r not in concerns]
    total = sum(patients.values())
    share = {level: sum(n for r, n in patients.items() if concerns.get(r) == level) / total
             for level in ("low", "moderate", "high")}
    words = "patients in reports of " + ", ".join(f"{level} concern {100 * share[level]:.0f}%" for level in share)
    if missing:
        words += f"; not appraised: {', '.join(missing)}"
    if share["high"] >= settings.risk_of_bias_high_share:
        return {"judgement": "very serious", "reason": words}
    if share["low"] < settings.risk_of_bias_high_share:
        return {"judgement": "serious", "reason": words}
    return {"judgement": "not serious", "reason": words}


def inconsistency(predictive_ci: list[float] | None, settings: GradeSettings) -> dict:
    if predictive_ci is None:
        return {"judgement": "not assessable", "reason": "no between-report spread is estimated for this outcome"}
    width = predictive_ci[1] - predictive_ci[0]
    serious, very = settings.inconsistency_width
    judgement = "very serious" if width > very else "serious" if width > serious else "not serious"
    return {"judgement": judgement,
            "reason": f"new-report 95% interval {predictive_ci[0]:.2f} to {predictive_ci[1]:.2f} (width {width:.2f})"}


def imprecision(ci: list[float], settings: GradeSettings, what: str = "pooled") -> dict:
    width = ci[1] - ci[0]
    serious, very = settings.imprecision_width
    judgement = "very serious" if width > very else "serious" if width > serious else "not serious"
    return {"judgement": judgement, "reason": f"{what} 95% interval {ci[0]:.2f} to {ci[1]:.2f} (width {width:.2f})"}


def publication_bias(slope: dict | None, scenario_shift: float | None, settings: GradeSettings) -> dict:
    reasons, suspected = [], False
    if slope is not None:
        reasons.append(f"size slope {slope['mean']:.2f} per unit of log n, P(slope < 0) {slope['p_negative']:.3f}")
        suspected |= slope["p_negative"] >= settings.publication_slope_probability
    if scenario_shift is not None:
        reasons.append(f"selection of all-responder reports (omega 0.5) shifts the pooled mean {scenario_shift:+.2f}")
        suspected |= -scenario_shift > settings.publication_shift
    if not reasons:
        return {"judgement": "not assessable", "reason": "the bias analyses were not run (sensitivity sweep skipped)"}
    return {"judgement": "strongly suspected" if suspected else "undetected", "reason": "; ".join(reasons)}


def certainty(domains: dict[str, dict], settings: GradeSettings) -> str:
    steps = sum(DOWNGRADE[domains[d]["judgement"]] for d in DOMAINS)
    return LEVELS[max(LEVELS.index(settings.start) - steps, 0)]


def rating(settings: GradeSettings, domains: dict[str, dict], **facts) -> dict:
    """One outcome's row: its facts (reports, patients, estimates), its domains and its certainty."""
    domains = {**domains, "indirectness": settings.indirectness.model_dump()}
    return {**facts, "start": settings.start, "start_reason": settings.start_reason,
            "domains": {d: domains[d] for d in DOMAINS}, "certainty": certainty(domains, settings)}
