"""The sentences of the report's first screen and of the clinician's page, generated from `summary.json`
alone, every number tagged with its key (`format.tag`) so that a test reads each one back.

Every function returns Markup, or an empty Markup when the data give it nothing to say: a sentence with
an empty slot is never printed. Names of the condition, drug and outcome come from the summary (the
data or the config), never from this module.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from analysis.report.format import estimate_formats, format_number, tag

EMPTY = Markup("")
CLINICAL_THRESHOLD_KEYS = ("0.75", "0.7")


def _m(text: str) -> Markup:
    return Markup(text)


def words(outcome: str) -> str:
    """"any_response" → "any response"."""
    return outcome.replace("_", " ")


SOURCE_LEVELS = {
    "primary_full_text": "full text",
    "primary_full_text_partial": "full text, partly read",
    "primary_abstract": "abstract only",
    "conference_abstract": "conference abstract",
    "secondary_summary": "a database summary",
    "secondary_review": "only from a review",
    "secondary_lay": "a non-peer-reviewed page",
}


def source_name(level: str) -> str:
    """How a report's counts were read, in words ("primary_abstract" → "abstract only")."""
    return SOURCE_LEVELS.get(level, level.replace("_", " "))


def plural(k: int, word: str, many: str | None = None) -> str:
    return f"{k} {word if k == 1 else (many or word + 's')}"


def listed(items) -> str:
    items = [str(i) for i in items]
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def estimate(key: str, block: dict, digits: int = 2) -> Markup:
    """"0.87 (95% 0.72 to 0.97)", each number tagged, all three at the digits Monte Carlo error leaves them."""
    return _m(f"{_tagged(key, block, digits)[0]} (95% {interval(key, block, digits)})")


def interval(key: str, block: dict, digits: int = 2) -> Markup:
    mean, lo, hi = _tagged(key, block, digits)
    return _m(f"{lo} to {hi}")


def _tagged(key: str, block: dict, digits: int) -> tuple[Markup, Markup, Markup]:
    keys = (key + ".mean", key + ".ci95.0", key + ".ci95.1")
    return tuple(tag(k, v, d, e) for k, (v, d, e) in zip(keys, estimate_formats(block, digits)))


# --- the bottom line -------------------------------------------------------------------------------------


def who(s: dict) -> Markup:
    """Who was treated, with what, at what dose."""
    ev = s["evidence"]
    designs = listed(f"{k} {d}{'s' if k != 1 and not d.endswith('s') else ''}" for d, k in ev.get("designs", {}).items())
    condition = f" with {escape(s['condition'])}" if s.get("condition") else ""
    doses = ev.get("doses_mg")
    dose = ""
    if doses:
        start = (f"{tag('evidence.doses_mg.start.0', doses['start'][0], None)} mg" if doses["start"][0] == doses["start"][1]
                 else f"{tag('evidence.doses_mg.start.0', doses['start'][0], None)} to {tag('evidence.doses_mg.start.1', doses['start'][1], None)} mg")
        dose = f", starting at {start} a day"
        if doses["highest"] > doses["start"][1]:
            dose += f" (up to {tag('evidence.doses_mg.highest', doses['highest'], None)} mg)"
    return _m(f"{tag('evidence.patients', ev['patients'])} published patients{condition}, in "
              f"{tag('evidence.reports', ev['reports'])} reports{f' ({escape(designs)})' if designs else ''}, "
              f"were treated with {escape(s['drug'])}{dose}.")


def how_often(s: dict) -> Markup:
    """How often any, marked and complete responses were reported, with the missing-grade range."""
    crude = s["comparators"]["crude"]
    text = (f"{tag('comparators.crude.y', crude['y'])} of {tag('comparators.crude.n', crude['n'])} had "
            f"{escape(words(s['outcome']))} as the authors judged it; {estimand(s)}, "
            f"{estimate('pooled', s['pooled'])}.")
    graded = s.get("graded")
    if graded and graded["marked"]["reports"]:
        marked = graded["marked"]["pooled"]
        text += f" A marked response in about {tag('graded.marked.pooled.mean', marked['mean'], 2, (marked.get('mcse') or {}).get('mean'))}"
        miss = graded["missingness"]
        if graded["complete"]["reports"]:
            worst = miss["outcomes"]["complete"][-1]
            mar = miss["outcomes"]["complete"][0]
            last = len(miss["outcomes"]["complete"]) - 1
            text += (f"; complete clearance in between {tag(f'graded.missingness.outcomes.complete.{last}.mean', worst['mean'], 2, (worst.get('mcse') or {}).get('mean'))} "
                     f"and {tag('graded.missingness.outcomes.complete.0.mean', mar['mean'], 2, (mar.get('mcse') or {}).get('mean'))}, "
                     f"depending on how the {tag('graded.missingness.ungraded_reports.complete', miss['ungraded_reports']['complete'])} "
                     "reports that did not grade it went")
        text += "."
    elif graded:
        text += " No report graded how deep the response went."
    return _m(text)


def how_soon(s: dict) -> Markup:
    """When improvement began, where stated, apart from the times that only bound it from above."""
    t = s.get("durability", {}).get("time_to_first_improvement")
    if not t or not (t["first_improvement_patients"] or t["upper_bound_patients"]):
        return EMPTY
    parts = []
    key = "durability.time_to_first_improvement"
    if t["first_improvement_patients"]:
        lo, hi = t["first_improvement_days"]
        span = (f"{tag(key + '.first_improvement_days.0', lo)} days" if lo == hi else
                f"{tag(key + '.first_improvement_days.0', lo)} to {tag(key + '.first_improvement_days.1', hi)} days")
        parts.append(f"where a report says when improvement began, it was {span} after starting "
                     f"({tag(key + '.first_improvement_patients', t['first_improvement_patients'])} patients)")
    if t["upper_bound_patients"]:
        lo, hi = t["upper_bound_days"]
        parts.append(f"{tag(key + '.upper_bound_patients', t['upper_bound_patients'])} more are described only as "
                     f"improved by {tag(key + '.upper_bound_days.0', lo)} to {tag(key + '.upper_bound_days.1', hi)} days")
    text = "; ".join(parts)
    return _m(text[0].upper() + text[1:] + ".")


def on_stopping(s: dict) -> Markup:
    t = s.get("durability", {}).get("dechallenge", {}).get("totals")
    if not t or not t["reports_positive_dechallenge"]:
        return EMPTY
    key = "durability.dechallenge.totals"
    text = (f"Lesions came back after stopping or lowering the drug in "
            f"{tag(key + '.reports_positive_dechallenge', t['reports_positive_dechallenge'])} reports")
    if t["reports_positive_dechallenge_rechallenge"]:
        text += (f", and responded again on restarting in "
                 f"{tag(key + '.reports_positive_dechallenge_rechallenge', t['reports_positive_dechallenge_rechallenge'])}")
    return _m(text + ".")


def harms(s: dict) -> Markup:
    h = s.get("safety")
    if not h:
        return EMPTY
    if not h["assessed_patients"]:
        return _m(f"No report of {escape(s['drug'])} states whether adverse events were looked for.")
    text = (f"Adverse events were looked for in {tag('safety.assessed_patients', h['assessed_patients'])} of "
            f"{tag('evidence.patients', s['evidence']['patients'])} patients, with "
            f"{tag('safety.patients_with_events', h['patients_with_events'])} recorded")
    if h.get("ci95"):
        text += (f": compatible with a risk of up to {tag('safety.ci95.1', h['ci95'][1], 2)} "
                 "(exact 95% bound); harms are under-reported in case reports")
    return _m(text + ".")


def certainty(s: dict) -> Markup:
    grade = s.get("grade") or {}
    if not grade:
        return EMPTY
    levels = {o: g["certainty"] for o, g in grade.items()}
    if len(set(levels.values())) == 1:
        level = next(iter(levels.values()))
        first = next(iter(levels))
        return _m(f'Certainty of the evidence (GRADE): <span class="cert" data-key="grade.{escape(first)}.certainty">'
                  f"{escape(level)}</span> for every outcome.")
    shown = "; ".join(f'{escape(words(o))}: <span class="cert" data-key="grade.{escape(o)}.certainty">{escape(c)}</span>'
                      for o, c in levels.items())
    return _m(f"Certainty of the evidence (GRADE): {shown}.")


def bias_robust(s: dict) -> Markup:
    """The bias-integrated answer and the tipping point, in plain terms."""
    bias = s.get("bias")
    if not bias:
        return EMPTY
    averaged = bias["averaged"]
    text = (f"if reports in which someone did not respond were less likely to be published, with how much "
            f"less uncertain (anywhere from not at all to {escape(format_number(1 / bias['omega_min'], 0))} times, "
            f"{'evenly on a log scale' if averaged['prior'] == 'log_uniform' else 'evenly'}), the average "
            f"response would be {estimate('bias.averaged.pooled', averaged['pooled'])}.")
    for i, t in enumerate(bias["tipping"]):
        if t["quantity"] == "mean":
            key = f"bias.tipping.{i}"
            if t["reached"] and t["times"] and t["times"] > 1:
                text += (f" The average stays above {tag(key + '.threshold', t['threshold'], 2)} unless such reports "
                         f"were {tag(key + '.times', t['times'], 1)} times less likely to be published")
                if t.get("failures"):
                    text += (f" (or {tag(key + '.failures', t['failures'])} unpublished single patients who did not "
                             "respond)")
                text += "."
            elif not t["reached"]:
                text += (f" Even if such reports were {escape(format_number(1 / bias['omega_min'], 0))} times less "
                         f"likely to be published, the average would stay above {tag(key + '.threshold', t['threshold'], 2)}.")
            break
    return _m(text)


def estimand(s: dict, noun: bool = False) -> str:
    """What the pooled estimate is: the average over reports, or, in a meta-regression, the mean of a report
    at the average of its covariates ("averaged over reports, 0.87"; as a noun, "the average over reports")."""
    if s.get("meta_regression"):
        return ("" if noun else "for ") + "a report at the average of its covariates"
    return "the average over reports" if noun else "averaged over reports"


def exactness(s: dict) -> str:
    """Which numbers of the page are exact and which come from draws, as this run computed them."""
    draws = "printed only to the digits their Monte Carlo error cannot change"
    if s["method"] != "quadrature":
        return f"The numbers of this model come from NUTS draws (too many parameters for a grid), {draws}."
    if s.get("graded"):
        return ("Every number here is the same at any seed: exact (computed by integration) unless it comes from "
                "the graded-outcome model, which is integrated on fixed quasi-random points and printed only to "
                "the digits its numerical error cannot change.")
    return "Every number here is exact (computed by integration, the same at any seed)."


def next_patient(s: dict) -> Markup:
    pred = s["predictive"]
    return _m(f"The chance that the next patient responds, in a clinic like those that reported, is "
              f"{tag('predictive.mean', pred['mean'], 2)} ({estimand(s, noun=True)}); the 95% interval "
              f"{interval('predictive', pred)} is for a new clinic's response rate, not for one patient.")


def bottom_line(s: dict) -> list[Markup]:
    """The clinical bottom line: who, how often, how soon, on stopping, harms, certainty (empty ones left out)."""
    return [m for m in (who(s), how_often(s), how_soon(s), on_stopping(s), harms(s), certainty(s)) if m]
