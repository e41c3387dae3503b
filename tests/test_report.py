"""The pages: self-contained, every printed number the `summary.json` number, a body to sign and an appendix,
one page for clinicians, sentences that follow the data."""

import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis import cli, fit
from analysis.inputs.config import CONFIG_DIR
from analysis.report.format import APPROXIMATE, format_number, format_probability, per


class _Collector(HTMLParser):
    """Tags with their attributes, and the text of every element that has a data-key."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.keyed: list[tuple[str, dict, str]] = []
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag not in ("img", "meta", "br"):
            self._open.append(attrs.get("data-key"))
            if attrs.get("data-key"):
                self.keyed.append((attrs["data-key"], attrs, ""))

    def handle_endtag(self, tag):
        if tag not in ("img", "meta", "br") and self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open and self._open[-1] and self.keyed and self.keyed[-1][0] == self._open[-1]:
            key, attrs, text = self.keyed[-1]
            self.keyed[-1] = (key, attrs, text + data)


def _parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


def _lookup(document, key: str):
    """Follow a dotted key; summary keys may themselves contain dots (e.g. 'p_above.0.5')."""
    value, parts = document, key.split(".")
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


def _mcse_of(document, key: str):
    """The Monte Carlo standard error a printed number was judged by (None for exact numbers)."""
    parent_key, _, leaf = key.rpartition(".")
    if leaf in ("0", "1") and parent_key.endswith("ci95"):  # an interval end: ci95.0 / ci95.1
        parent_key, _, _ = parent_key.rpartition(".")
        leaf = ("lo", "hi")[int(leaf)]
    elif leaf.isdigit():
        return None
    try:
        parent = _lookup(document, parent_key)
    except KeyError:
        return None
    if not isinstance(parent, dict):
        return None
    return parent.get(f"{leaf}_mcse") or (parent.get("mcse") or {}).get(leaf)


def assert_every_number_is_the_summary_number(page: Path, summary: dict, minimum: int) -> None:
    keyed = _parse(page).keyed
    assert len(keyed) >= minimum
    for key, attrs, text in keyed:
        value = _lookup(summary, key)
        if attrs.get("data-scale"):
            assert text == per(value, int(attrs["data-scale"]), _mcse_of(summary, key)), (key, text, value)
        elif isinstance(value, str) or isinstance(value, int) and not isinstance(value, bool):
            assert text == {"not_applicable": "n/a"}.get(value, str(value)), key  # the appraisal grid abbreviates
        elif text[:2] in ("> ", "< "):  # a probability from draws whose digits would round it to 1 or 0
            assert text in (format_probability(value, 2, _mcse_of(summary, key)),
                            format_probability(value, 3, _mcse_of(summary, key))), (key, text, value)
            assert (value > float(text[2:])) if text[0] == ">" else (value < float(text[2:])), (key, text, value)
        elif text.startswith("≈"):
            unit = 10 ** math.ceil(math.log10(APPROXIMATE * _mcse_of(summary, key)))  # the rounding unit
            assert abs(float(text[1:].replace(",", "")) - value) <= unit / 2, (key, text, value)
        else:
            decimals = len(text.split(".")[1]) if "." in text else 0
            printed = (format_number(value, decimals), format_number(value, None),
                       format_number(value, decimals, _mcse_of(summary, key)))
            assert text in printed, (key, text, value)


def test_report_is_self_contained(primary_run):
    _, out = primary_run
    for name in ("report.html", "clinician.html"):
        html = (out / name).read_text(encoding="utf-8")
        page = _parse(out / name)
        assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object", "embed")]
        images = [a["src"] for t, a in page.tags if t == "img"]
        assert images and all(src.startswith("data:image/png;base64,") for src in images)
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", html) and "@import" not in html


def test_every_number_on_both_pages_is_the_summary_json_number(primary_run):
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    assert_every_number_is_the_summary_number(out / "report.html", summary, minimum=150)
    assert_every_number_is_the_summary_number(out / "clinician.html", summary, minimum=8)


def test_the_number_check_can_fail(primary_run, tmp_path):
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    page = tmp_path / "report.html"
    html = (out / "report.html").read_text(encoding="utf-8")
    page.write_text(html.replace('data-key="pooled.mean">0.87<', 'data-key="pooled.mean">0.88<', 1), encoding="utf-8")
    assert html != page.read_text(encoding="utf-8")
    with pytest.raises(AssertionError):
        assert_every_number_is_the_summary_number(page, summary, minimum=1)


def test_the_body_holds_the_sections_to_sign_and_the_appendix_the_rest(primary_run):
    _, out = primary_run
    html = (out / "report.html").read_text(encoding="utf-8")
    body, appendix = html.split('id="appendix"', 1)
    for anchor in ("bottom-line", "limits", "evidence", "bias", "graded", "safety", "grade", "next-study"):
        assert f'id="{anchor}"' in body
    for anchor in ("model", "computation", "checks", "sensitivity", "bias-details", "target", "design", "reproduce"):
        assert f'id="{anchor}"' in appendix
    for figure in ("trace", "rank", "energy", "khat", "loo_pit", "psense", "sensitivity_tornado", "map_fit"):
        assert f'alt="{figure}' not in body and figure not in re.findall(r"figures/(\w+)\.png", body)
    assert 'href="#appendix"' in body and 'href="clinician.html"' in body
    assert "Computational checks passed" in appendix and "COMPUTATIONAL CHECKS FAILED" not in html
    # every report of the table, excluded ones with their reason
    for report_id in ("Albers2017", "Series14_Menta2024", "Zheng2025", "Li2017_duplicate", "Campbell2018_unverified"):
        assert f"<td>{report_id}</td>" in html
    assert "u = κ^(−1/2) ~ HalfNormal(0.5)" in appendix and "μ ~ Beta(1, 1)" in appendix


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(not (_chromium() and shutil.which("pdfinfo")), reason="needs chromium and poppler-utils")
def test_the_body_prints_on_at_most_eight_a4_pages_and_the_clinician_page_on_one(primary_run, tmp_path):
    _, out = primary_run
    html = (out / "report.html").read_text(encoding="utf-8")
    body_only = tmp_path / "body.html"
    body_only.write_text(html.split('<h2>Appendix</h2>', 1)[0] + "</body></html>", encoding="utf-8")
    for page, limit in ((body_only, 8), (out / "clinician.html", 1)):
        pdf = tmp_path / f"{page.stem}.pdf"
        subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                        f"--print-to-pdf={pdf}", str(page)], check=True, capture_output=True, timeout=120)
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        pages = int(re.search(r"Pages:\s+(\d+)", info)[1])
        assert pages <= limit, (page.name, pages)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "body.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    summary = json.loads((out / "summary.json").read_text())
    assert text.count("very low") >= len(summary["grade"])  # every GRADE row keeps its certainty in print


WIDTH_PROBE = """<script>window.addEventListener('load', () => {
  const p = document.createElement('pre'); p.id = 'widths';
  p.textContent = document.documentElement.scrollWidth + ' ' + document.documentElement.clientWidth;
  document.body.appendChild(p); });</script>"""


@pytest.mark.skipif(not _chromium(), reason="needs chromium")
def test_nothing_scrolls_sideways_at_800_px(primary_run, tmp_path):
    """At an 800 px window, neither page is wider than the window (wide tables wrap, figures shrink)."""
    _, out = primary_run
    for name in ("report.html", "clinician.html"):
        probe = tmp_path / name
        probe.write_text((out / name).read_text(encoding="utf-8").replace("</body>", WIDTH_PROBE + "</body>"),
                         encoding="utf-8")
        dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=800,1000",
                              "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        scroll, client = map(int, re.search(r'<pre id="widths">(\d+) (\d+)</pre>', dom).groups())
        assert scroll <= client, (name, scroll, client)


def test_report_of_another_prior_and_selection_describes_them(model_cache, tmp_path):
    """The default model with another heterogeneity prior and a publication mechanism: the report's model
    specification and every number follow the config (the logit-normal family: the slow test below)."""
    config = tmp_path / "variant.toml"
    config.write_text(
        f'extends = "{CONFIG_DIR / "default.toml"}"\n[model.publication]\nmechanism = "single_patient"\nweight = 0.5\n'
        '[model.beta_binomial]\nu_scale = 1.0\n[borrowing]\nenabled = false\n[graded]\nenabled = false\n'
        '[cumulative]\nenabled = false\n')
    assert fit.main(["--config", str(config), "--out", str(tmp_path / "out"), "--no-figures"],
                    cache=model_cache) == cli.EXIT_OK
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "HalfNormal(1)" in html and "HalfNormal(0.5)" not in html
    assert 'data-key="target.' not in html and "no target arm configured" in html
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"] == "beta_binomial" and "graded" not in summary
    assert_every_number_is_the_summary_number(tmp_path / "out" / "report.html", summary, minimum=50)


@pytest.mark.slow  # the logit-normal family's exact quadrature with a publication mechanism takes minutes
def test_report_of_another_config_describes_that_model(model_cache, tmp_path):
    config = tmp_path / "variant.toml"
    config.write_text(
        f'extends = "{CONFIG_DIR / "logit_normal.toml"}"\n[model.publication]\nmechanism = "single_patient"\nweight = 0.5\n'
        '[model.logit_normal]\ntau_dist = "half_cauchy"\ntau_scale = 0.5\n[borrowing]\nenabled = false\n'
        '[graded]\nenabled = false\n[cumulative]\nenabled = false\n')
    assert fit.main(["--config", str(config), "--out", str(tmp_path / "out")], cache=model_cache) == cli.EXIT_OK
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "τ ~ HalfCauchy(0.5)" in html and "μ ~ Normal(0, 2)" in html and "HalfNormal(0.5)" not in html
    assert 'data-key="target.' not in html and "no target arm configured" in html
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"] == "logit_normal" and {"mu", "tau"} <= set(summary["hyperparameters"])
    assert_every_number_is_the_summary_number(tmp_path / "out" / "report.html", summary, minimum=50)


def test_failed_gate_writes_outputs_marked_failed_and_shows_it_in_red_at_the_top(model_cache, tmp_path):
    config = tmp_path / "strict.toml"  # the primary fit fails the gate alone: the other fits are left out
    config.write_text(f'extends = "{CONFIG_DIR / "default.toml"}"\n[diagnostics]\ness_tail_min = 1e9\n'
                      "[graded]\nenabled = false\n[cumulative]\nenabled = false\n[borrowing]\nenabled = false\n")
    assert fit.main(["--config", str(config), "--out", str(tmp_path / "out"), "--no-sensitivity", "--no-figures"],
                    cache=model_cache) == cli.EXIT_GATE_FAILED
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "failed" and not summary["diagnostics"]["passed"]
    assert any("tail ESS below" in reason for reason in summary["diagnostics"]["failures"])
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    banner = html.index("COMPUTATIONAL CHECKS FAILED")
    assert banner < html.index('id="bottom-line"') and 'class="banner failed"' in html
    assert "tail ESS below" in html[banner:html.index('id="bottom-line"')]


def test_the_drawing_processes_get_the_plotted_parameters_not_the_report_level_arrays():
    """The diagnostic figures read the plotted parameters' prior and posterior draws and the sampler
    statistics; θ, replicated counts and log-likelihoods grow with the reports (gigabytes at 5,000) and
    stay in the main process."""
    import numpy as np
    import xarray as xr

    from analysis.report.writer import _plotted

    draws = {"mu": (("chain", "draw"), np.zeros((2, 3))), "u": (("chain", "draw"), np.ones((2, 3))),
             "theta": (("chain", "draw", "report"), np.zeros((2, 3, 4)))}
    idata = xr.DataTree.from_dict({
        "posterior": xr.Dataset(draws), "prior": xr.Dataset(draws),
        "posterior_predictive": xr.Dataset({"y": (("chain", "draw", "report"), np.zeros((2, 3, 4)))}),
        "sample_stats": xr.Dataset({"energy": (("chain", "draw"), np.zeros((2, 3)))})})
    plotted = _plotted(idata, ["mu", "u"])
    assert set(plotted.children) == {"posterior", "prior", "sample_stats"}
    for group in ("posterior", "prior"):
        assert set(plotted[group].data_vars) == {"mu", "u"}
        assert plotted[group]["u"].values.tolist() == idata[group]["u"].values.tolist()
    assert "energy" in plotted["sample_stats"]
