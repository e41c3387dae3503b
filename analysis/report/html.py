"""The pages: the reviewer's report (a body to sign and an appendix, one self-contained file) and the
clinician's one-page summary, rendered from `summary.json` and the figures, nothing else.

Every number a template prints goes through `format.tag` (its `summary.json` key on the span) or, inside
generated sentences, through the prose modules that tag theirs.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from analysis.report.format import format_number, tag
from analysis.report.prose import clinical as clinical_prose
from analysis.report.prose import headline, sections

TEMPLATES = Path(__file__).resolve().parent / "templates"
CROSS_CHECKED = {"pooled.mean": "the pooled mean", "pooled.ci95.0": "the pooled mean's lower 95% bound",
                 "pooled.ci95.1": "the pooled mean's upper 95% bound",
                 "predictive.ci95.0": "a new report's lower 95% bound",
                 "heterogeneity.median": "the between-report SD's median"}
"""The quantities of the primary model's NUTS cross-check (`steps.primary.cross_check`), in words."""


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["pct"] = lambda x: "—" if x is None else f"{100 * x:.0f}%"
    env.filters["md"] = markdown_inline
    env.filters["words"] = headline.words
    env.filters["source"] = headline.source_name
    env.filters["cross_checked"] = lambda key: CROSS_CHECKED.get(key, key)
    env.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]  # keeps "Hailey-Hailey" as it is
    env.globals["tag"] = tag
    env.globals["estimate"] = headline.estimate
    env.globals["interval"] = headline.interval
    return env


def render_page(template: str, context: dict) -> str:
    return environment().get_template(template).render(**context)


def embed_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def markdown_inline(text: str) -> Markup:
    """The search log's inline markup (**bold**, `code`) as HTML, everything else escaped."""
    escaped = str(escape(text))
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return Markup(re.sub(r"`(.+?)`", r"<code>\1</code>", escaped))


def context(synthesis, summary: dict, figures: dict[str, str], run_meta: dict, figures_drawn: bool = True) -> dict:
    """Everything the templates read: the summary, the figures (and whether any were drawn), the run, and
    the generated sentences."""
    return {
        "s": summary,
        "figures_drawn": figures_drawn,
        "exactness": headline.exactness(summary),
        "pooled_is": headline.estimand(summary, noun=True),
        "figures": figures,
        "run": run_meta,
        "bottom_line": headline.bottom_line(summary),
        "bias_robust": headline.bias_robust(summary),
        "next_patient": headline.next_patient(summary),
        "limits": sections.limits(summary),
        "bias_text": sections.publication(summary),
        "size_text": sections.size_regression(summary),
        "durability_text": clinical_prose.durability_sentences(synthesis.durability),
        "durability_notes": clinical_prose.durability_notes(synthesis.durability),
        "safety_text": clinical_prose.safety_sentence(synthesis.safety),
        "safety_notes": clinical_prose.safety_notes(synthesis.safety),
        "target_safety_text": clinical_prose.safety_sentence(synthesis.target.safety) if synthesis.target else "",
        "spec": sections.model_specification(summary),
        "design_text": sections.design(summary),
        "next_report_text": sections.next_report(summary),
        "clinician": sections.clinician(summary),
    }


def write_pages(directory: Path, synthesis, summary: dict, figure_dir: Path | None, run_meta: dict) -> None:
    """report.html and clinician.html into `directory`, the figures embedded (`figure_dir` None: a draft
    drawn without figures, which the pages say)."""
    figures = {p.stem: embed_png(p) for p in sorted(figure_dir.glob("*.png"))} if figure_dir is not None else {}
    values = context(synthesis, summary, figures, run_meta, figure_dir is not None)
    (directory / "report.html").write_text(render_page("report.html.j2", values), encoding="utf-8")
    (directory / "clinician.html").write_text(render_page("clinician.html.j2", values), encoding="utf-8")
