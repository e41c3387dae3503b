"""The HTML report: self-contained, generated from the run, and every number equal to summary.json."""

import json
import re
from html.parser import HTMLParser

from analysis import fit
from analysis.config import CONFIG_DIR
from analysis.report.html import format_number


class _Collector(HTMLParser):
    """Tags with their attributes, and the text of every element that has a data-key."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.keyed: list[tuple[str, str]] = []
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag not in ("img", "meta", "br"):
            self._open.append(attrs.get("data-key"))
            if attrs.get("data-key"):
                self.keyed.append((attrs["data-key"], ""))

    def handle_endtag(self, tag):
        if tag not in ("img", "meta", "br") and self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open and self._open[-1] and self.keyed and self.keyed[-1][0] == self._open[-1]:
            key, text = self.keyed[-1]
            self.keyed[-1] = (key, text + data)


def _parse(path):
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


def _lookup(document, key: str):
    """Follow a dotted key; summary keys may themselves contain dots (e.g. 'p_above.0.5')."""
    value = document
    parts = key.split(".")
    while parts:
        for size in range(len(parts), 0, -1):
            candidate = ".".join(parts[:size])
            if isinstance(value, dict) and candidate in value:
                value, parts = value[candidate], parts[size:]
                break
            if isinstance(value, list) and size == 1 and candidate.isdigit():
                value, parts = value[int(candidate)], parts[1:]
                break
        else:
            raise KeyError(key)
    return value


def test_report_is_self_contained(primary_run):
    _, out = primary_run
    html = (out / "report.html").read_text(encoding="utf-8")
    page = _parse(out / "report.html")
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object", "embed")]
    images = [a["src"] for t, a in page.tags if t == "img"]
    assert len(images) >= 12 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html) and "@import" not in html
    # Every embedded figure is also saved as PNG and SVG.
    names = {p.stem for p in (out / "figures").glob("*.png")}
    assert names == {p.stem for p in (out / "figures").glob("*.svg")} and len(names) == len(images)


def test_every_number_in_the_report_is_the_summary_json_number(primary_run):
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    keyed = _parse(out / "report.html").keyed
    assert len(keyed) > 100
    for key, text in keyed:
        value = _lookup(summary, key)
        if isinstance(value, str) or isinstance(value, int) and not isinstance(value, bool):
            assert text == str(value), key
            continue
        decimals = len(text.split(".")[1]) if "." in text else 0
        assert text == format_number(value, decimals), (key, text, value)


def test_report_covers_the_reviewers_sections(primary_run):
    _, out = primary_run
    html = (out / "report.html").read_text(encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text())
    for anchor in ("headline", "evidence", "model", "computation", "results", "checks", "target", "sensitivity", "reproduce"):
        assert f'id="{anchor}"' in html
    # Every report of the table, excluded ones with their reason.
    for report_id in ("Albers2017", "Series14_Menta2024", "Zheng2025", "Li2017_duplicate", "Campbell2018_unverified"):
        assert f"<td>{report_id}</td>" in html
    assert "excluded (duplicate)" in html and "excluded (unverified)" in html
    # The model specification comes from the config that ran.
    assert "u = κ^(−1/2) ~ HalfNormal(0.5)" in html and "μ ~ Beta(1, 1)" in html
    assert "Computational checks passed" in html and "COMPUTATIONAL CHECKS FAILED" not in html
    # The computational checks sit below the headline: "passed" is not a verdict on the evidence.
    assert html.index('id="headline"') < html.index("Computational checks passed")
    assert summary["pooled"]["mean"] is not None and "python -m analysis.fit" in html


def test_report_of_another_config_describes_that_model(model_cache, tmp_path):
    config = tmp_path / "variant.toml"
    config.write_text(
        f'extends = "{CONFIG_DIR / "logit_normal.toml"}"\n[model.publication]\nmechanism = "single_patient"\nweight = 0.5\n[model.logit_normal]\n'
        'tau_dist = "half_cauchy"\ntau_scale = 0.5\n[borrowing]\nenabled = false\n[graded]\nenabled = false\n'
        '[cumulative]\nenabled = false\n'
    )
    assert fit.main(["--config", str(config), "--out", str(tmp_path / "out")], cache=model_cache) == fit.EXIT_OK
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "τ ~ HalfCauchy(0.5)" in html and "μ ~ Normal(0, 2)" in html and "HalfNormal(0.5)" not in html
    assert 'id="target"' not in html and "ω = 0.5" in html
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"] == "logit_normal" and {"mu", "tau"} == set(summary["hyperparameters"])
    # With heterogeneity and μ > 0, the population mean lies below expit(μ) (pulled toward 1/2).
    assert summary["pooled"]["mean"] < summary["expit_mu"]["mean"]


def test_failed_gate_writes_outputs_marked_failed_and_shows_it_in_red_at_the_top(model_cache, tmp_path):
    config = tmp_path / "strict.toml"
    config.write_text(f'extends = "{CONFIG_DIR / "default.toml"}"\n[diagnostics]\ness_tail_min = 1e9\n')
    assert fit.main(["--config", str(config), "--out", str(tmp_path / "out")], cache=model_cache) == fit.EXIT_GATE_FAILED
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "failed" and not summary["diagnostics"]["passed"]
    assert any("tail ESS below" in reason for reason in summary["diagnostics"]["failures"])
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    banner = html.index("COMPUTATIONAL CHECKS FAILED")
    assert banner < html.index('id="headline"') and 'class="banner failed"' in html
    assert "tail ESS below" in html[banner:html.index('id="headline"')]
