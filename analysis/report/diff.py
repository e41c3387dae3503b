"""What an update changed: two `summary.json` documents in, their differences out (dicts in, a dict out).

Every value is compared at its dotted key (the keys of `format.lookup`: list items by index): a number
that moved by more than `TOLERANCE` (relative to its size above 1), any other value that differs, and
whole entries only one side has (a new report's block is one "added" entry). Drawn from that list or from
the two summaries: the headline quantities, the sentences of the first screen and of the next-report map
(rendered by the prose modules from each summary), the GRADE judgements that changed, and the PRISMA flow.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from typing import Any

from analysis.report.format import format_number
from analysis.report.prose import headline, sections

TOLERANCE = 1e-4
"""A number changed when it moved by more than this (times its size, above 1): below the fourth decimal,
far below the two that the report prints."""
HEADLINE = {
    "evidence.reports": "reports pooled", "evidence.patients": "patients pooled",
    "comparators.crude.y": "responders", "comparators.crude.proportion": "crude rate",
    "pooled.mean": "average over reports (pooled mean)", "pooled.ci95.0": "pooled mean, 95% lower bound",
    "pooled.ci95.1": "pooled mean, 95% upper bound", "predictive.mean": "a new report's response rate",
    "predictive.ci95.0": "a new report, 95% lower bound", "predictive.ci95.1": "a new report, 95% upper bound",
    "heterogeneity.posterior.median": "between-report SD of θ (median)",
    "bias.averaged.pooled.mean": "pooled mean with publication bias integrated out",
    "target.posterior.mean": "target arm, borrowing", "next_report.lowest.pooled_mean":
    "lowest pooled mean one more report could give",
}
SECTIONS = {"bottom line": headline.bottom_line, "next patient": headline.next_patient,
            "publication bias": headline.bias_robust, "next report": sections.next_report}
"""The generated paragraphs compared sentence by sentence."""
GRADE_LEVEL = "certainty"
SHOWN_CHARACTERS = 160


def compare(old: dict, new: dict, tolerance: float = TOLERANCE) -> dict:
    """Everything that differs between the signed-off summary `old` and the updated `new`."""
    values = changes(old, new, tolerance)
    by_key = {c["key"]: c for c in values}
    old_reports, new_reports = set(old.get("reports", {})), set(new.get("reports", {}))
    return {
        "tolerance": tolerance,
        "reports": {"added": [r for r in new.get("reports", {}) if r not in old_reports],
                    "removed": [r for r in old.get("reports", {}) if r not in new_reports]},
        "headline": [{**by_key[k], "label": label} for k, label in HEADLINE.items() if k in by_key],
        "sentences": sentence_changes(old, new),
        "grade": grade_transitions(old, new),
        "prisma": prisma_delta(old.get("prisma") or {}, new.get("prisma") or {}),
        "values": values,
        "sections": _count_by_section(values),
    }


def changes(old: Any, new: Any, tolerance: float = TOLERANCE, key: str = "") -> list[dict]:
    """The changed values under `key`, in the new document's order: {key, kind, old, new, change}, kind
    "changed", "added" or "removed"; `change` is new − old for two numbers."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for name in [*new, *(k for k in old if k not in new)]:
            child = f"{key}.{name}" if key else str(name)
            if name not in old:
                out.append(_entry(child, "added", None, new[name]))
            elif name not in new:
                out.append(_entry(child, "removed", old[name], None))
            else:
                out += changes(old[name], new[name], tolerance, child)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            child = f"{key}.{i}"
            if i >= len(old):
                out.append(_entry(child, "added", None, new[i]))
            elif i >= len(new):
                out.append(_entry(child, "removed", old[i], None))
            else:
                out += changes(old[i], new[i], tolerance, child)
        return out
    if _number(old) and _number(new):
        moved = abs(new - old) > tolerance * max(1.0, abs(old), abs(new))
        return [{**_entry(key, "changed", old, new), "change": _difference(old, new)}] if moved else []
    return [] if old == new else [_entry(key, "changed", old, new)]


def _entry(key: str, kind: str, old, new) -> dict:
    return {"key": key, "kind": kind, "old": old, "new": new, "change": None}


def _difference(old, new):
    """new − old, as summary.json carries its numbers (six decimals)."""
    return new - old if isinstance(old, int) and isinstance(new, int) else round(new - old, 6)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count_by_section(values: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in values:
        section = c["key"].split(".")[0]
        counts[section] = counts.get(section, 0) + 1
    return counts


def plain(markup) -> str:
    """A generated paragraph as text (tags dropped, entities resolved)."""
    return html.unescape(re.sub(r"<[^>]+>", "", str(markup))).strip()


def sentences(s: dict) -> dict[str, list[str]]:
    """The generated paragraphs of a summary, split into sentences, by section."""
    out = {}
    for name, render in SECTIONS.items():
        rendered = render(s)
        paragraphs = rendered if isinstance(rendered, list) else [rendered]
        out[name] = [part for p in paragraphs for part in re.split(r"(?<=\.)\s+(?=[A-Z])", plain(p)) if part]
    return out


def sentence_changes(old: dict, new: dict) -> list[dict]:
    """Sentences that differ, old beside new where one replaced the other: {section, old, new} (None on
    the side that has no counterpart)."""
    before, after = sentences(old), sentences(new)
    out = []
    for section in SECTIONS:
        a, b = before[section], after[section]
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            olds, news = a[i1:i2], b[j1:j2]
            for k in range(max(len(olds), len(news))):
                out.append({"section": section, "old": olds[k] if k < len(olds) else None,
                            "new": news[k] if k < len(news) else None})
    return out


def grade_transitions(old: dict, new: dict) -> list[dict]:
    """Each GRADE judgement (domains and the certainty) whose value changed: {outcome, domain, old, new}."""
    before, after = old.get("grade") or {}, new.get("grade") or {}
    out = []
    for outcome in [*after, *(o for o in before if o not in after)]:
        a, b = before.get(outcome) or {}, after.get(outcome) or {}
        before_domains, after_domains = a.get("domains") or {}, b.get("domains") or {}
        for domain in [*after_domains, *(d for d in before_domains if d not in after_domains), GRADE_LEVEL]:
            was, now = (_judgement(row, domain) for row in (a, b))
            if was != now:
                out.append({"outcome": outcome, "domain": domain, "old": was, "new": now})
    return out


def _judgement(row: dict, domain: str) -> str | None:
    if domain == GRADE_LEVEL:
        return row.get(GRADE_LEVEL)
    return ((row.get("domains") or {}).get(domain) or {}).get("judgement")


def prisma_delta(old: dict, new: dict) -> list[dict]:
    """Every count of the PRISMA flow, old and new: {key, old, new, change, changed}."""
    flat_old, flat_new = _leaves(old), _leaves(new)
    out = []
    for key in [*flat_new, *(k for k in flat_old if k not in flat_new)]:
        a, b = flat_old.get(key), flat_new.get(key)
        out.append({"key": key, "old": a, "new": b, "change": _difference(a, b) if _number(a) and _number(b) else None,
                    "changed": a != b})
    return out


def _leaves(document: Any, key: str = "") -> dict[str, Any]:
    if isinstance(document, dict):
        return {k: v for name, child in document.items()
                for k, v in _leaves(child, f"{key}.{name}" if key else str(name)).items()}
    return {key: document}


def shown(value) -> str:
    """A value for the update page: numbers as the report prints them (four decimals), an added or removed
    block as compact JSON."""
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + " …"
    return format_number(value, 4) if _number(value) or value is None or isinstance(value, bool) else str(value)


def shown_change(value) -> str:
    """A signed difference ("+0.0123", "−2"), or "" when there is none."""
    if not _number(value):
        return ""
    text = f"{value:+d}" if isinstance(value, int) else f"{value:+.4f}"
    return text.replace("-", "−")
