"""The sensitivity sweep, from ``s["sensitivity"]["variants"]``: how far the pooled mean moves if publication
were biased or an analysis choice were different (tornado), and every variant's estimates (forest)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .style import (BAND_COLOUR, COLOURS, FAILED_COLOUR, GROUP_COLOURS, SPARE_COLOURS, WIDTH, finite,  # noqa: E402
                    legend_below, minus, plural, styled)

TORNADO_LIMIT = 25
"""At most this many bars per panel (the largest shifts)."""
ZERO_SHIFT = 5e-7
"""A shift this small is no shift (summary.json keeps 6 decimals)."""
KINDS = (("bias", "If publication were biased"), ("choice", "If a choice were different"))
OUTCOME_LABELS = {"any_response": "any response", "any": "any response", "marked": "marked response",
                  "complete": "complete clearance", "sustained": "sustained response"}
ESTIMAND_LABELS = {"other outcome": "a separate model of the outcome's reports",
                   "average covariates": "meta-regression: a report at the average of the covariates"}
FOREST_COLUMNS = (("pooled", "pooled mean"), ("predictive", "new report (predictive)"), ("target", "target arm"))

_LABEL_PREFIXES = (("sens_outcome_", "outcome: "), ("sens_prior_", "prior: "), ("sens_tau_", "τ prior: "),
                   ("sens_evidence_", "evidence: "), ("sens_metareg_", "meta-regression: "),
                   ("sens_naloxone_", "naloxone: "), ("borrowing_", "borrowing: "), ("sens_graded_", "graded: "),
                   ("graded_", "graded: "), ("loo_", "without "), ("sens_", ""))
_PUBLICATION = re.compile(r"^(?:sens_)?publication_(all|single)_w(\d)(\d*)(?:_(.+))?$")
_MECHANISM = {"all": "any size", "single": "single-patient reports"}


def _weight(first: str, rest: str) -> str:
    return f"{float(first + '.' + rest) if rest else float(first):g}"


def variant_label(row: dict, grouped: bool = False) -> str:
    """A short label for a sensitivity variant: its "label" if given, else its name made readable
    ("publication_all_w025" → "publication: ω = 0.25, any size", "loo_X" → "without X",
    "borrowing_w010" → "borrowing: w = 0.1"); `grouped` (under a group header) drops the group word."""
    if row.get("label"):
        return str(row["label"])
    name = str(row.get("variant", ""))
    match = _PUBLICATION.match(name)
    if match:
        mechanism, first, rest, tail = match.groups()
        text = f"ω = {_weight(first, rest)}, {_MECHANISM[mechanism]}" + (f", {tail.replace('_', ' ')}" if tail else "")
        return text if grouped else f"publication: {text}"
    if name == "logit_normal":
        return "logit-normal likelihood"
    for prefix, replacement in _LABEL_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if prefix != "loo_":
                rest = rest.replace("_", " ")
                rest = re.sub(r"\bw(\d)(\d*)\b", lambda m: f"w = {_weight(m.group(1), m.group(2))}", rest)
                rest = re.sub(r"\bu(\d)(\d*)\b", lambda m: f"u ~ HN({_weight(m.group(1), m.group(2))})", rest)
                rest = re.sub(r"\b(hn|hc)(\d)(\d*)\b",
                              lambda m: f"{m.group(1).upper()}({_weight(m.group(2), m.group(3))})", rest)
                if grouped and replacement:
                    return ("τ " if prefix == "sens_tau_" else "") + rest
            return replacement + rest
    return name.replace("_", " ")


def _status(row: dict) -> str:
    status = row.get("status")
    if status:
        return str(status)
    passed = row.get("passed")
    return "passed" if passed is None or bool(passed) else "failed"


def _group_colours(groups) -> dict[str, str]:
    colours, spare = {}, iter(SPARE_COLOURS * 4)
    for group in groups:
        colours[group] = GROUP_COLOURS.get(group) or next(spare)
    return colours


def _estimate(row: dict, key: str):
    """(mean, lo, hi) of the row's `key` estimate, or None."""
    block = row.get(key)
    if isinstance(block, dict) and finite(block.get("mean")) and block.get("ci95"):
        lo, hi = block["ci95"]
        if finite(lo) and finite(hi):
            return float(block["mean"]), float(lo), float(hi)
    return None


# --- tornado ---------------------------------------------------------------------------------------------


def _collapsed_label(members: list[dict], primary: dict | None) -> str:
    """"without any one 3/3 report (5 reports)" for leave-one-out rows of identical results (reports of the
    same counts), from the primary row's totals less the variant's; other identical rows joined by " = "."""
    if all(str(m.get("variant", "")).startswith("loo_") for m in members):
        first = members[0]
        if primary and all(finite(first.get(k)) and finite(primary.get(k)) for k in ("patients", "responders")):
            n = int(primary["patients"]) - int(first["patients"])
            y = int(primary["responders"]) - int(first["responders"])
            return f"without any one {y}/{n} report ({len(members)} reports)"
        return f"without any one of {len(members)} reports of the same counts"
    return " = ".join(variant_label(m) for m in members)


def tornado_rows(rows: Sequence[dict], kind: str, limit: int = TORNADO_LIMIT) -> dict:
    """The rows of one tornado panel: passed variants of the primary estimand of `kind` ("bias" or
    "choice") with a finite pooled shift, identical leave-one-out results collapsed into one bar, sorted
    by absolute shift (at most `limit`); variants that leave the pooled mean unchanged (e.g. the target
    arm's borrowing weight) in one line; failed and not-run variants listed apart.

    Returns {"shown": [{label, shift, mean, group, members}], "usable": count, "unchanged": [rows],
    "left_out": [rows]}."""
    rows = list(rows)
    primary = next((r for r in rows if str(r.get("variant")) == "primary"), None)
    candidates = [r for r in rows if str(r.get("variant")) != "primary" and r.get("kind") == kind
                  and r.get("estimand", "primary") == "primary"]
    left_out = [r for r in candidates if _status(r) != "passed"]
    passed = [r for r in candidates if _status(r) == "passed" and finite(r.get("pooled_shift"))]
    by_name = {str(r["variant"]): r for r in passed}
    entries, seen, unchanged = [], set(), []
    for row in passed:
        name = str(row["variant"])
        if name in seen:
            continue
        if abs(float(row["pooled_shift"])) < ZERO_SHIFT:
            unchanged.append(row)
            seen.add(name)
            continue
        twins = [by_name[t] for t in row.get("identical_to") or () if t in by_name and t not in seen]
        members = [row, *twins]
        seen.update(str(m["variant"]) for m in members)
        label = _collapsed_label(members, primary) if twins else variant_label(row)
        mean = row["pooled"]["mean"] if isinstance(row.get("pooled"), dict) else None
        entries.append({"label": label, "shift": float(row["pooled_shift"]), "mean": mean,
                        "group": str(row.get("group") or "other"), "members": [str(m["variant"]) for m in members]})
    entries.sort(key=lambda e: (-abs(e["shift"]), e["label"]))
    return {"shown": entries[:limit], "usable": len(entries), "unchanged": unchanged, "left_out": left_out}


@styled
def tornado(rows: Sequence[dict], reference: float, limit: int = TORNADO_LIMIT) -> plt.Figure:
    """Shift of the pooled mean from the primary analysis, one bar per variant of the primary estimand,
    in two panels: "If publication were biased" (kind "bias") and "If a choice were different" (kind
    "choice"), each sorted by absolute shift (largest on top, at most `limit`), coloured by group, labelled
    "shift → the variant's pooled mean". Leave-one-out variants with identical results are one bar
    ("without any one 3/3 report (5 reports)"); variants that leave the pooled mean unchanged are named in
    one line without a bar; failed and not-run variants are listed in red, without a bar.

    rows: ``s["sensitivity"]["variants"]`` (variant, group, kind, estimand, status, pooled, pooled_shift,
    identical_to, reports, patients, responders); reference: the primary pooled mean (``s["pooled"]["mean"]``)."""
    panels = [(kind, title, tornado_rows(rows, kind, limit)) for kind, title in KINDS]
    panels = [p for p in panels if p[2]["shown"] or p[2]["left_out"] or p[2]["unchanged"]]
    if not panels:
        panels = [(KINDS[0][0], KINDS[0][1], {"shown": [], "usable": 0, "unchanged": [], "left_out": []})]

    def lines_of(part) -> list[tuple[str, dict | None]]:
        out = [("bar", e) for e in part["shown"]]
        if part["unchanged"]:
            out.append(("unchanged", None))
        out += [("failed", r) for r in part["left_out"]]
        return out

    layouts = [lines_of(part) for _, _, part in panels]
    heights = [max(len(lines), 1) + 0.6 for lines in layouts]
    shifts = [e["shift"] for _, _, part in panels for e in part["shown"]]
    low, high = min([0.0, *shifts]), max([0.0, *shifts])
    span = max(high - low, 0.02)
    groups = dict.fromkeys(e["group"] for _, _, part in panels for e in part["shown"])
    colours = _group_colours(groups)
    figure, axes = plt.subplots(len(panels), 1, figsize=(WIDTH, 0.26 * sum(heights) + 0.75 * len(panels) + 1.5),
                                layout="constrained", sharex=True, squeeze=False,
                                gridspec_kw={"height_ratios": heights})
    for ax, (kind, title, part), lines in zip(axes[:, 0], panels, layouts):
        total = max(len(lines), 1)
        labels, label_colours, ticks = [], [], []
        for i, (what, item) in enumerate(lines):
            y = total - 1 - i
            ticks.append(y)
            if what == "bar":
                ax.barh(y, item["shift"], color=colours[item["group"]], height=0.68, gid=f"bar:{item['label']}")
                text = minus(f"{item['shift']:+.3f}")
                if finite(item.get("mean")):
                    text += f" → {float(item['mean']):.2f}"
                ax.annotate(text, (item["shift"], y), xytext=(4 if item["shift"] >= 0 else -4, 0),
                            textcoords="offset points", ha="left" if item["shift"] >= 0 else "right",
                            va="center", fontsize=7.5)
                labels.append(item["label"])
                label_colours.append("#222222")
            elif what == "unchanged":
                by_group: dict[str, list[str]] = {}
                for r in part["unchanged"]:
                    by_group.setdefault(str(r.get("group") or "other"), []).append(variant_label(r, grouped=True))
                names = "; ".join(f"{g} ({', '.join(v)})" for g, v in by_group.items())
                if len(names) > 44:
                    names = "; ".join(f"{g} ({plural(len(v), 'variant')})" for g, v in by_group.items())
                labels.append(f"no change: {names}")
                label_colours.append("#666666")
                ax.plot([0], [y], "|", color="#666666", ms=8, mew=1.5)
            else:
                labels.append(f"{variant_label(item)} ({_status(item).upper()}, no estimate)")
                label_colours.append(FAILED_COLOUR)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ticks, labels)
        for tick, colour in zip(ax.get_yticklabels(), label_colours):
            tick.set_color(colour)
        ax.tick_params(axis="y", length=0, labelsize=8)
        ax.set_ylim(-0.7, total - 0.3)
        usable = part["usable"]
        which = (f"the {len(part['shown'])} largest of {usable}" if usable > len(part["shown"])
                 else f"{usable} variant{'s' if usable != 1 else ''}")
        ax.set_title(f"{title} ({which})", fontsize=9.5)
        ax.tick_params(axis="x", labelbottom=True)
    axes[0, 0].set_xlim(low - 0.6 * span, high + 0.6 * span)
    axes[-1, 0].set_xlabel(f"shift of the pooled mean from {reference:.3f} (primary)")
    figure.suptitle("Sensitivity of the pooled mean (primary estimand), largest absolute shift first\n"
                    "bar label: shift → the variant's pooled mean", x=0.01, ha="left", fontsize=9.5)
    handles = [Patch(color=c, label=g) for g, c in colours.items()]
    if handles:
        legend_below(figure, handles, ncols=min(4, len(handles)), fontsize=8)
    return figure


# --- forest ----------------------------------------------------------------------------------------------


def _outcome_label(row: dict) -> str:
    outcome = str(row.get("outcome") or "")
    return OUTCOME_LABELS.get(outcome, outcome.replace("_", " ") or "outcome")


def _other_label(row: dict) -> str:
    """A row of another estimand, under its outcome's header."""
    estimand = str(row.get("estimand") or "")
    if estimand.startswith("graded"):
        name = str(row.get("variant", ""))
        return "graded model, " + ("ungraded stages as failures" if "missing_as_failure" in name
                                   else name.replace("sens_graded_", "").replace("_", " "))
    if estimand == "average covariates":
        model = str(row.get("model") or "").replace("_", "-")
        return f"report of average size (meta-regression{', ' + model if model else ''})"
    if estimand == "other outcome":
        model = str(row.get("model") or "").replace("_", "-")
        count = f"{row['reports']} reports" if finite(row.get("reports")) else ""
        return "separate model" + (f" ({', '.join(p for p in (model, count) if p)})" if model or count else "")
    return variant_label(row)


def _forest_lines(rows: list[dict], primary_estimand: bool) -> list[tuple[str, dict | None]]:
    """(header or label, row or None) lines of one forest panel, rows grouped under headers."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if primary_estimand:
            key = str(r.get("group") or "other")
        else:
            key = _outcome_label(r) + (" (a report at the average covariates)"
                                       if r.get("estimand") == "average covariates" else "")
        groups.setdefault(key, []).append(r)
    if "primary" in groups:
        groups = {"primary": groups.pop("primary"), **groups}
    lines: list[tuple[str, dict | None]] = []
    for group, members in groups.items():
        if group != "primary" or len(members) > 1:
            lines.append((group, None))
        for r in members:
            label = variant_label(r, grouped=group != "primary") if primary_estimand else _other_label(r)
            lines.append((label, r))
    return lines


def _forest_panel(subfigure, lines, keys, primary: dict | None, title: str) -> None:
    total = max(len(lines), 1)
    axes = subfigure.subplots(1, len(keys), squeeze=False, sharey=True)[0]
    positions = np.arange(total)[::-1]
    labels, colours, weights = [], [], []
    for pos, (label, r) in zip(positions, lines):
        if r is None:
            labels.append(label.upper())
            colours.append("#333333")
            weights.append("bold")
            for ax in axes:
                ax.axhspan(pos - 0.5, pos + 0.5, color="#eeeeee", lw=0, zorder=0)
            continue
        status = _status(r)
        failed = status != "passed"
        shown_any = any(_estimate(r, key) for key, _ in keys)
        suffix = f" ({status.upper()}{'' if shown_any and status == 'failed' else ', no estimate'})" if failed else ""
        labels.append(label + suffix)
        colours.append(FAILED_COLOUR if failed else "#222222")
        weights.append("normal")
        is_primary = str(r.get("variant")) == "primary"
        for ax, (key, _) in zip(axes, keys):
            estimate = _estimate(r, key)
            if estimate is None:
                continue
            mean, lo, hi = estimate
            colour = FAILED_COLOUR if failed else (COLOURS["map"] if is_primary else "#333333")
            ax.hlines(pos, lo, hi, color=colour, lw=2.2 if is_primary else 1.3)
            ax.plot(mean, pos, "o", color=colour, ms=5 if is_primary else 3.5, zorder=3, clip_on=False,
                    gid=f"estimate:{key}")
    for index, (ax, (key, column)) in enumerate(zip(axes, keys)):
        reference = _estimate(primary, key) if primary else None
        if reference:
            ax.axvspan(reference[1], reference[2], color=BAND_COLOUR, lw=0, zorder=0)
            ax.axvline(reference[0], color=COLOURS["map"], lw=1)
        ax.set_xlim(-0.02, 1.03)
        ax.set_xticks(np.linspace(0, 1, 3 if len(keys) > 2 else 6))
        ax.set_ylim(-0.6, total - 0.4)
        ax.set_title(column, loc="center", fontsize=9)
        ax.set_xlabel("probability")
        if index == 0:
            ax.set_yticks(positions, labels)
            ax.tick_params(axis="y", length=0)
            for tick, colour, weight in zip(ax.get_yticklabels(), colours, weights):
                tick.set_color(colour)
                tick.set_fontweight(weight)
                tick.set_fontsize(7.5)
        else:
            ax.tick_params(axis="y", length=0, labelleft=False)
            ax.spines["left"].set_visible(False)
    subfigure.suptitle(title, x=0.01, ha="left", fontsize=9.5)


@styled
def forest(rows: Sequence[dict], target_label: str | None = None) -> plt.Figure:
    """Every variant's estimates (mean and 95% interval), split by estimand: the variants of the primary
    estimand in the upper panel (pooled mean, predictive and, where variants have it, the target arm,
    against the primary analysis: band and line), grouped under their group's header; the other outcomes
    and the meta-regression's "average covariates" rows in the lower panel, grouped by outcome (pooled and
    predictive, no reference: another estimand). Failed variants in red; not-run variants listed with no
    estimate.

    rows: ``s["sensitivity"]["variants"]`` (variant, group, kind, estimand, status, outcome, model,
    pooled, predictive, target); `target_label`: the target arm's name for its column title (e.g.
    ``s["target"]["target_drug"]``)."""
    rows = list(rows)
    primary = next((r for r in rows if str(r.get("variant")) == "primary"), None)
    main = [r for r in rows if r.get("estimand", "primary") == "primary"]
    other = [r for r in rows if r.get("estimand", "primary") != "primary"]
    columns = [(k, (target_label or title) if k == "target" else title) for k, title in FOREST_COLUMNS]
    panels = []
    if main:
        keys = [(k, t) for k, t in columns if any(_estimate(r, k) for r in main)] or columns[:1]
        panels.append((_forest_lines(main, True), keys, primary,
                       "The primary estimand: each variant's mean and 95% interval\n"
                       "blue band and line: the primary analysis; red: failed convergence checks"))
    if other:
        keys = [(k, t) for k, t in columns[:2] if any(_estimate(r, k) for r in other)] or columns[:1]
        panels.append((_forest_lines(other, False), keys, None,
                       "Other estimands: the graded outcomes and a report at the average covariates\n"
                       "(not comparable with the primary analysis: no reference drawn)"))
    heights = [0.2 * max(len(lines), 1) + 1.05 for lines, _, _, _ in panels]
    figure = plt.figure(figsize=(WIDTH, sum(heights) + 0.45), layout="constrained")
    subfigures = figure.subfigures(len(panels), 1, height_ratios=heights, squeeze=False)[:, 0] \
        if len(panels) > 1 else [figure]
    for subfigure, (lines, keys, reference, title) in zip(subfigures, panels):
        _forest_panel(subfigure, lines, keys, reference, title)
    legend_below(figure, [Patch(color=BAND_COLOUR, label="primary analysis, 95% interval"),
                          Line2D([], [], color="#333333", marker="o", ms=4, label="variant"),
                          Line2D([], [], color=FAILED_COLOUR, marker="o", ms=4, label="failed variant")],
                 ncols=3, fontsize=8)
    return figure
