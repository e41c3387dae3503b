"""The generated text of the report's sections beyond the first screen: what the evidence cannot say, the
publication-bias and size analyses, the model as run, the next study, and the clinician's page. Every
function reads `summary.json` only and tags every number it prints."""

from __future__ import annotations

from markupsafe import Markup, escape

from analysis.report.format import format_number, format_probability, relation, tag
from analysis.report.prose.headline import EMPTY, certainty, estimate, harms, interval, listed, source_name, words


def _m(text: str) -> Markup:
    return Markup(text)


# --- what the evidence cannot say ---------------------------------------------------------------------------


def limits(s: dict) -> list[Markup]:
    return [m for m in (_no_control(s), _fingerprint(s), _heterogeneity(s), _patient_level(s), _reading(s)) if m]


def _no_control(s: dict) -> Markup:
    ev = s["evidence"]
    designs = listed(f"{escape(d)} {tag('evidence.designs.' + d, k)}" for d, k in ev.get("designs", {}).items())
    text = "No comparison group enters the analysis" + (f" (designs: {designs})" if designs else "") + "."
    if s.get("natural_course"):
        condition = escape(s["condition"]) if s.get("condition") else "The condition"
        text += f" {condition}: {escape(s['natural_course'])}."
    text += (" The numbers describe patients whose response was published, not a comparison with patients not "
             "given the drug.")
    totals = (s.get("durability") or {}).get("dechallenge", {}).get("totals")
    if totals and totals["reports_positive_dechallenge_rechallenge"]:
        key = "durability.dechallenge.totals"
        text += (" The strongest sign in such reports that the drug, not the natural course, was at work is a flare "
                 "on stopping followed by a response on restarting: "
                 f"{tag(key + '.patients_positive_dechallenge_rechallenge', totals['patients_positive_dechallenge_rechallenge'])} "
                 f"patients in {tag(key + '.reports_positive_dechallenge_rechallenge', totals['reports_positive_dechallenge_rechallenge'])} reports.")
    return _m(text)


def _fingerprint(s: dict) -> Markup:
    ev = s["evidence"]
    mixed = ev["reports_with_nonresponder"]
    if not ev["all_responder_reports"] or not mixed or ev["all_responder_max_n"] >= min(r["n"] for r in mixed):
        return EMPTY  # the fingerprint: every all-responder report smaller than every report with a non-responder
    named = listed(f"{escape(r['report_id'])} ({tag(f'evidence.reports_with_nonresponder.{i}.y', r['y'])} of "
                   f"{tag(f'evidence.reports_with_nonresponder.{i}.n', r['n'])})" for i, r in enumerate(mixed))
    text = (f"Selective publication is likely, and the data carry its fingerprint: the "
            f"{tag('evidence.all_responder_reports', ev['all_responder_reports'])} reports in which everyone "
            f"responded have at most {tag('evidence.all_responder_max_n', ev['all_responder_max_n'])} patients, "
            f"while {named} {'is the only report' if len(mixed) == 1 else 'are the only reports'} with someone who "
            "did not respond. A real small-study effect (smaller clinics, different patients or doses) would leave "
            "the same fingerprint: the data cannot tell the two apart.")
    return _m(text)


def _heterogeneity(s: dict) -> Markup:
    ev, het = s["evidence"], s["heterogeneity"]
    series = ev["series"]
    if not series:
        return _m("Every report describes a single patient: how much reports differ cannot be learnt from these "
                  "data, and the interval for a new clinic comes from the prior.")
    text = (f"How much reports differ is learnt from the {tag('evidence.series', series)} reports of two or more "
            f"patients (every series informs it); the {tag('evidence.single_patient_reports', ev['single_patient_reports'])} "
            "single-patient reports carry no information about it")
    if ev.get("contrast_reports"):
        text += f", and it shows most in {escape(listed(ev['contrast_reports']))}"
    post, prior = het["posterior"], het["prior"]
    narrowed = post["ci95"][1] / prior["ci95"][1] if prior["ci95"][1] else 1.0
    verdict = ("The data barely move it" if narrowed > 0.6 else "The data narrow it" if narrowed > 0.3 else
               "The data pin it down")
    text += (f". {verdict}: the between-report SD of the response probability has posterior median "
             f"{tag('heterogeneity.posterior.median', post['median'], 2)} against "
             f"{tag('heterogeneity.prior.median', prior['median'], 2)} from the prior alone (upper 95% bound "
             f"{tag('heterogeneity.prior.ci95.1', prior['ci95'][1], 2)} before the data, "
             f"{tag('heterogeneity.posterior.ci95.1', post['ci95'][1], 2)} after)")
    text += (", so the interval for a new clinic leans on the prior (Appendix, sensitivity analyses)."
             if narrowed > 0.6 else ".")
    return _m(text)


def _patient_level(s: dict) -> Markup:
    rows = s["evidence"].get("patient_rows")
    if not rows:
        return EMPTY
    text = (f"Per-patient details are given for {tag('evidence.patient_rows.patients', rows['patients'])} of "
            f"{tag('evidence.patients', s['evidence']['patients'])} patients, and for "
            f"{tag('evidence.patient_rows.nonresponders', rows['nonresponders'])} of the "
            f"{tag('evidence.nonresponders', s['evidence']['patients'] - s['evidence']['responders'])} who did not respond")
    if rows["nonresponders"] == 0:
        text += ": no patient-level predictor of response (dose, age, extent) can be examined"
    return _m(text + ".")


def _reading(s: dict) -> Markup:
    levels = s["evidence"].get("source_levels") or {}
    if not levels:
        return EMPTY
    shown = "; ".join(f"{escape(source_name(k))}: {tag('evidence.source_levels.' + k, v)}" for k, v in levels.items())
    return _m(f"How the counts were read: {shown}.")


# --- publication bias and report size -------------------------------------------------------------------------


def publication(s: dict) -> list[Markup]:
    bias = s.get("bias")
    if not bias:
        why = (s.get("skipped") or {}).get("publication")
        return [_m(f"The selection models, tipping points and the bias-integrated answer were not computed: "
                   f"{escape(why)}.")] if why else []
    out = []
    scenarios = [(i, sc) for i, sc in enumerate(bias["scenarios"]) if sc["mechanism"] == "all_responders"]
    if scenarios:
        parts = "; ".join(f"{tag(f'bias.scenarios.{i}.pooled.mean', sc['pooled']['mean'], 2)} if one were "
                          f"{tag(f'bias.scenarios.{i}.weight', sc['weight'], 2)} times as likely to be published"
                          for i, sc in scenarios)
        out.append(_m(f"A report in which everyone responded is assumed always published, one with a non-responder "
                      f"with relative probability ω, whatever its size. The average response falls as ω falls: {parts}."))
    tips = []
    for i, t in enumerate(bias["tipping"]):
        key = f"bias.tipping.{i}"
        what = "the average" if t["quantity"] == "mean" else "the 95% lower bound of the average"
        if t["reached"] and t["times"] and t["times"] > 1:
            text = (f"{what} falls below {tag(key + '.threshold', t['threshold'], 2)} if reports with a non-responder "
                    f"were {tag(key + '.times', t['times'], 1)} times less likely to be published (for each such report in "
                    f"print, {escape(format_number(t['times'] - 1, 1))} unpublished)")
            if t.get("failures"):
                text += (f", or if {tag(key + '.failures', t['failures'])} single patients who did not respond had gone "
                         "unpublished")
            tips.append(text)
        elif t["reached"]:
            tips.append(f"{what} is below {tag(key + '.threshold', t['threshold'], 2)} already without selection")
        else:
            tips.append(f"{what} stays above {tag(key + '.threshold', t['threshold'], 2)} even at ω = "
                        f"{escape(format_number(bias['omega_min'], 2))}")
    if tips:
        text = "; ".join(tips)
        out.append(_m(f"Tipping points: {text}."))
    avg, other = bias["averaged"], bias["averaged_sensitivity"]
    prior_words = {"log_uniform": f"log-uniform on [{format_number(bias['omega_min'], 2)}, 1]", "uniform": "uniform on (0, 1)"}
    out.append(_m(
        f"With ω uncertain ({escape(prior_words[avg['prior']])}) and averaged over, the average response is "
        f"{estimate('bias.averaged.pooled', avg['pooled'])} and the new-clinic interval {interval('bias.averaged.predictive', avg['predictive'])}; "
        f"with ω {escape(prior_words[other['prior']])} instead, {estimate('bias.averaged_sensitivity.pooled', other['pooled'])}. "
        f"What the data say about ω itself: P(ω &lt; 0.1), selection ten times or more against reports with a non-responder, "
        f"is {tag('bias.averaged.p_strong_prior', avg['p_strong_prior'], 2)} before and "
        f"{tag('bias.averaged.p_strong_posterior', avg['p_strong_posterior'], 2)} after the data: "
        + _omega_learnt(avg["p_strong_prior"], avg["p_strong_posterior"])))
    out.append(_m(_lead(s)))
    if bias.get("size_dependent") == "not identifiable":
        out.append(_m(f"Selection that depends on report size (a single failure almost never written up, a mixed "
                      f"series sometimes) is not modelled: only {tag('bias.nonresponder_reports', bias['nonresponder_reports'])} "
                      f"reports have a non-responder, the smallest of {tag('bias.nonresponder_min_n', bias['nonresponder_min_n'])} "
                      "patients, so the data cannot tell it from selection that does not depend on size."
                      if bias["nonresponder_reports"] else
                      "Selection that depends on report size is not modelled: no report has a non-responder."))
    return out


def _omega_learnt(before: float, after: float) -> str:
    """What the move of P(ω < 0.1) from prior to posterior says (rule: a change of more than 0.05 either
    way is a move; a factor of two in the odds is a clear one)."""
    odds = (after / (1 - after)) / (before / (1 - before)) if 0 < after < 1 and 0 < before < 1 else None
    if after > before + 0.05:
        strength = "clearly " if odds and odds > 2 else ""
        return ("the data " + strength + "point toward selection, through the pattern of who was reported, which a "
                "real small-study effect would leave too.")
    if after < before - 0.05:
        strength = "clearly " if odds and odds < 0.5 else ""
        return f"the data {strength}argue against strong selection against reports with a non-responder."
    return "the data say little about it."


def _lead(s: dict) -> str:
    """Why the first screen leads with the unadjusted average beside the bias-integrated one."""
    avg = s["bias"]["averaged"]
    return ("Why the unadjusted average leads and the bias-integrated one stands beside it: the unadjusted average "
            "is what the published reports say, and the bias-integrated one depends on a prior for ω that the data "
            f"inform only weakly (it moves from {format_number(avg['pooled']['mean'], 2)} to "
            f"{format_number(s['bias']['averaged_sensitivity']['pooled']['mean'], 2)} between the two priors). Read "
            "together with the tipping points, they bound what the evidence can support.")


def size_regression(s: dict) -> list[Markup]:
    """The size meta-regression beside the primary analysis (`small_study`) or, for a config with
    covariates, the analysis's own meta-regression (`meta_regression`): each slope with P(slope < 0), the
    predicted average response at chosen covariate values, and what a size slope cannot be told apart from."""
    name = "small_study" if s.get("small_study") else "meta_regression"
    block = s.get(name)
    if not block or (name == "small_study" and "log_n" not in block["slopes"]):
        return []
    out = []
    if name == "meta_regression":
        labels = ", ".join(escape(slope["label"]) for slope in block["slopes"].values())
        out.append(_m(f"Meta-regression of this analysis, on {labels}: the average response it reports is that of "
                      "a report at the average of its covariates."))
    for covariate, slope in block["slopes"].items():
        key = f"{name}.slopes.{covariate}"
        mcse = slope.get("p_negative_mcse")  # a bound ("> 0.95") where the draws' digits would print 1.0
        p = relation(format_probability(slope["p_negative"], 2, mcse)) + tag(key + ".p_negative", slope["p_negative"],
                                                                             2, mcse, probability=True)
        if covariate == "log_n":
            trend = ("larger reports tend to have found lower response rates" if slope["p_negative"] >= 0.8 else
                     "the data show no clear relation between report size and response")
            text = (f"A meta-regression on report size (log n): slope {estimate(key + '.slope', slope['slope'])} per "
                    f"unit of log n, P(slope &lt; 0) {p}: {trend}")
        else:
            text = (f"On {escape(slope['label'])}: slope {estimate(key + '.slope', slope['slope'])} "
                    f"{escape(slope['unit'])}, P(slope &lt; 0) {p}")
        fragile = slope.get("without_most_influential")
        if fragile:
            text += (f"; without {escape(fragile['report'])} alone, P(slope &lt; 0) is "
                     f"{tag(key + '.without_most_influential.p_negative', fragile['p_negative'], 2)}")
        out.append(_m(text + "."))
    shown = []
    for i, pr in enumerate(block["predictions"]):
        flag = " (beyond the largest report: an extrapolation)" if pr["extrapolation"] else ""
        shown.append(f"{escape(pr['label'])}: {estimate(f'{name}.predictions.{i}.estimate', pr['estimate'])}{flag}")
    if shown:
        by = "by report size" if {pr["covariate"] for pr in block["predictions"]} == {"log_n"} else "by covariate"
        out.append(_m(f"Predicted average response {by}: " + "; ".join(shown) + "."))
    conf = block.get("confounders")
    if conf:
        bits = []
        if conf["secondary"]["with_nonresponder"] != conf["secondary"]["all_responder"]:
            bits.append(f"{conf['secondary']['with_nonresponder']} of the {conf['groups']['with_nonresponder']} reports with a "
                        f"non-responder {'is' if conf['secondary']['with_nonresponder'] == 1 else 'are'} known only from a "
                        f"secondary source, against {conf['secondary']['all_responder']} of the "
                        f"{conf['groups']['all_responder']} all-responder reports")
        dose = conf["highest_dose"]
        if dose["with_nonresponder"] and dose["all_responder"] and dose["with_nonresponder"] > dose["all_responder"]:
            bits.append(f"doses reached up to {format_number(dose['with_nonresponder'], 1)} mg a day in the reports with a "
                        f"non-responder and at most {format_number(dose['all_responder'], 1)} mg in the others (a dose "
                        "raised after non-response goes with the outcome, not with size)")
        if bits:
            out.append(_m("What a meta-regression cannot separate from size: " + escape("; ".join(bits))
                          + ". With so few reports that are not all-responder, these explanations cannot be told apart."))
    return out


# --- the model as run --------------------------------------------------------------------------------------------


def model_specification(s: dict) -> list[tuple[str, str]]:
    """(statement, why) pairs generated from the summary's record of the config that ran."""
    prior, family = s["prior"], s["model"]
    lines = [(f"y_i ~ Binomial(n_i, θ_i), i = 1, …, {s['evidence']['reports']}",
              f"responders y_i of n_i patients treated in report i ({words(s['outcome'])})")]
    if family == "beta_binomial":
        lines.append(("θ_i ~ Beta(μκ, (1 − μ)κ)", "reports differ: μ is the population mean response probability, κ the "
                      "concentration (large κ: similar reports)"))
        lines.append((f"μ ~ Beta({format_number(prior['mean_a'], None)}, {format_number(prior['mean_b'], None)})",
                      "flat on the pooled mean" if prior["mean_a"] == prior["mean_b"] == 1 else "configured prior on the pooled mean"))
        if prior["kind"] == "weakly_informative":
            lines.append((f"u = κ^(−1/2) ~ HalfNormal({format_number(prior['u_scale'], None)})",
                          "u is the between-report spread (0: identical reports); the half-normal keeps BDA3's flat shape "
                          "near homogeneity and shrinks away from κ < 1, where reports turn all-or-none"))
        else:
            lines.append((f"u = κ^(−1/2) ~ Uniform(0, {format_number(prior['u_max'], None)})", "BDA3's reference prior"))
    else:
        lines.append(("logit θ_i = μ + τ z_i, z_i ~ Normal(0, 1)", "reports differ on the log-odds scale"))
        lines.append((f"μ ~ Normal({format_number(prior['mu_mean'], None)}, {format_number(prior['mu_sd'], None)})",
                      "the RBesT convention for binary data"))
        dist = "HalfNormal" if prior["tau_dist"] == "half_normal" else "HalfCauchy"
        lines.append((f"τ ~ {dist}({format_number(prior['tau_scale'], None)})", "between-report SD on the log-odds scale"))
    lines.append(("θ_i integrated out; posterior of the population parameters integrated exactly on a grid",
                  "a two- or three-parameter model needs no sampling for its numbers; NUTS runs beside it as a check"))
    publication = s["publication"]
    if publication["mechanism"] == "none":
        lines.append(("publication: every report equally likely to be published",
                      "the primary analysis takes the reports at face value; the bias analyses relax it"))
    else:
        lines.append((f"P(y_i | published) ∝ P(y_i) · ω^[y_i < n_i], ω = {format_number(publication['weight'], 2)}",
                      f"selective publication ({publication['mechanism'].replace('_', ' ')})"))
    return lines


# --- the next study ------------------------------------------------------------------------------------------------


def design(s: dict) -> list[Markup]:
    plan = s.get("design")
    if not plan:
        return []
    arm = plan["single_arm"]
    largest = str(max(arm["sizes"]))
    names = {"no selection": "taking the published reports at face value", "omega averaged": "with selection uncertain"}
    shown = [f"{tag(f'design.single_arm.assurance.{k}.{largest}', v[largest], 2)} {escape(names.get(k, k.replace('omega', 'at ω =')))}"
             for k, v in arm["assurance"].items() if k in ("no selection", "omega 0.25", "omega averaged")]
    out = [_m(f"A single-arm study of {escape(largest)} patients, a success if P(response rate &gt; "
              f"{tag('design.single_arm.benchmark', arm['benchmark'], 2)}) &gt; {tag('design.single_arm.probability', arm['probability'], 2)} "
              f"(needs {tag(f'design.single_arm.critical.{largest}', arm['critical'][largest])} responders; a "
              f"{tag(f'design.single_arm.false_success.{largest}', arm['false_success'][largest], 3)} chance of success if "
              f"the true rate were the benchmark), would succeed with probability {listed(shown)}: how much of the "
              "published response rate is selective publication decides whether a confirmatory study is likely to "
              "succeed. The benchmark is a judgement (there is no control arm).")]
    target = plan.get("target")
    if target:
        n = str(max(target["sizes"]))
        out.append(_m(f"For {escape(target['drug'])}, a study of {escape(n)} patients analysed with the robust prior from "
                      f"{escape(s['drug'])} would have power {tag(f'design.target.power.robust_map.{n}', target['power']['robust_map'][n], 2)} "
                      f"(flat prior: {tag(f'design.target.power.flat.{n}', target['power']['flat'][n], 2)}) at a true rate of "
                      f"{tag('design.target.power_at', target['power_at'], 2)}, at the cost of a false-success rate of "
                      f"{tag(f'design.target.false_success.robust_map.{n}', target['false_success']['robust_map'][n], 2)} "
                      f"(flat: {tag(f'design.target.false_success.flat.{n}', target['false_success']['flat'][n], 2)}) at the benchmark."))
    return out


# --- the clinician's page ----------------------------------------------------------------------------------------


def clinician(s: dict) -> dict[str, Markup]:
    """The clinician's page: the bottom line in GRADE's words for the certainty found, of 100 patients, how
    soon and when to stop trying, harms, certainty and what the evidence is."""
    levels = {g["certainty"] for g in (s.get("grade") or {}).values()}
    uncertain = "very uncertain" if levels == {"very low"} else "uncertain" if levels <= {"low", "very low"} else ""
    pred, ev = s["predictive"], s["evidence"]
    bias = s.get("bias")
    condition = f" with {escape(s['condition'])}" if s.get("condition") else ""
    lead = f"{escape(s['drug']).capitalize()} may help some patients{condition}"
    if uncertain:
        lead += f", but the evidence is {uncertain}"
    out = {"lead": _m(lead + ".")}
    out["evidence"] = _m(f"The evidence: {tag('evidence.reports', ev['reports'])} published reports of "
                         f"{tag('evidence.patients', ev['patients'])} patients, pooled without a comparison group"
                         f"{_mostly_abstracts(s)}.{_selective(s)}")
    out["harms"] = harms(s) or _m("The reports do not say whether harms were looked for.")
    out["certainty"] = certainty(s)
    out["unadjusted"] = _m(f"About {tag('predictive.mean', pred['mean'], scale=100)} of 100 if the published "
                           "reports are taken at face value")
    if bias:
        averaged = bias["averaged"]["predictive"]
        out["adjusted"] = _m(f"about {tag('bias.averaged.predictive.mean', averaged['mean'], scale=100)} of 100 "
                             "if reports of patients who did not improve were less likely to be published")
    out["meaning"] = _m(f'"Improve" means {escape(words(s["outcome"]))} as the authors reported it while the drug '
                        f"was taken{_deeper(s)}.")
    t = (s.get("durability") or {}).get("time_to_first_improvement")
    if t and t["first_improvement_patients"]:
        weeks = max(1, round(t["largest_first_improvement_days"] / 7))
        text = (f"Where a time was stated, improvement began within "
                f"{tag('durability.time_to_first_improvement.largest_first_improvement_days', t['largest_first_improvement_days'])} "
                f"days (about {weeks} week{'s' if weeks != 1 else ''})")
        if t.get("upper_bound_patients"):
            text += (f"; others were described as improved at visits up to "
                     f"{tag('durability.time_to_first_improvement.largest_upper_bound_days', t['largest_upper_bound_days'])} days")
        out["soon"] = _m(text + ". The reports do not say when to stop trying; a stop rule would have to come from "
                                "a study.")
    return out


def _mostly_abstracts(s: dict) -> str:
    """", most read only from their abstracts" when more than half the pooled reports were."""
    levels = s["evidence"].get("source_levels") or {}
    abstracts = sum(k for level, k in levels.items() if "abstract" in level)
    return ", most read only from their abstracts" if abstracts * 2 > sum(levels.values()) else ""


def _selective(s: dict) -> str:
    """The GRADE publication-bias judgement of the main outcome, in a clinician's words."""
    row = (s.get("grade") or {}).get(s["outcome"])
    if not row or row["domains"]["publication_bias"]["judgement"] in ("not serious", "undetected"):
        return ""
    return " Patients who did not improve are probably under-represented: reports of success are more likely to be published."


def _deeper(s: dict) -> str:
    """How much rarer a marked response or a clearance was, where the graded model ran."""
    graded = s.get("graded")
    if not graded:
        return ""
    parts = [f"{name} in about {tag(f'graded.{key}.pooled.mean', graded[key]['pooled']['mean'],
                                      mcse=(graded[key]['pooled'].get('mcse') or {}).get('mean'), scale=100)}"
             for key, name in (("marked", "a marked response"), ("complete", "complete clearance"))
             if graded.get(key) and graded["missingness"]["ungraded_reports"].get(key, 0) < s["evidence"]["reports"]]
    return ("; " + " and ".join(parts) + " of 100") if parts else ""


# --- what the next report could change ------------------------------------------------------------------------


def _judgement(key: str, text: str) -> Markup:
    return _m(f'<span data-key="{escape(key)}">{escape(text)}</span>')


def _series(key: str, update: dict, fewer: str = "", article: str = "a") -> Markup:
    """"a series of 40 in which no patient responded", "a series of 20 with 10 (or fewer) responding"."""
    responding = ("in which no patient responded" if update["y"] == 0 else
                  f"with {tag(key + '.y', update['y'])}{fewer} responding")
    return _m(f"{article} series of {tag(key + '.n', update['n'])} {responding}")


def next_report(s: dict) -> Markup:
    """How far one new report could move the answer: the average over reports barely (one report among
    many, under heterogeneity), the crude rate, the new-report bound and the spread much more."""
    nr = s.get("next_report")
    if not nr:
        return EMPTY
    key, now, low = "next_report", nr["current"], nr["lowest"]
    one, three = (nr["examples"] + [None, None])[:2]
    text = (f"No single new series of up to {tag(key + '.max_n', nr['max_n'])} patients, however it turned out, "
            f"would lower the average over reports below {tag(key + '.lowest.pooled_mean', low['pooled_mean'], 2)} "
            f"(now {tag(key + '.current.pooled_mean', now['pooled_mean'], 2)})")
    if one:
        text += (f": {_series(key + '.examples.0', one)} would bring it to "
                 f"{tag(key + '.examples.0.pooled_mean', one['pooled_mean'], 2)}")
        if three:
            text += (f", and {tag(key + '.examples.1.series', three['series'])} such series to "
                     f"{tag(key + '.examples.1.pooled_mean', three['pooled_mean'], 2)}")
    text += (f". One report moves the other estimands more: {_series(key + '.lowest', low)} would take the crude "
             f"rate from {tag(key + '.current.crude', now['crude'], 2)} to "
             f"{tag(key + '.lowest.crude', low['crude'], 2)}, the 95% lower bound for a new report's response rate "
             f"from {tag(key + '.current.predictive_lo', now['predictive_lo'], 2)} to "
             f"{tag(key + '.lowest.predictive_lo', low['predictive_lo'], 2)}, and the between-report SD from "
             f"{tag(key + '.current.heterogeneity', now['heterogeneity'], 2)} to "
             f"{tag(key + '.lowest.heterogeneity', low['heterogeneity'], 2)}.")
    below = nr["below_threshold"]
    if below:
        text += (f" {_series(key + '.below_threshold', below, ' or fewer', 'A')} would take the average below the "
                 f"decision threshold of {tag(key + '.threshold', nr['threshold'], None)}.")
    change = nr["imprecision_change"]
    if change:
        turned = _judgement(key + ".imprecision_change.imprecision", change["imprecision"])
        text += (f" GRADE imprecision would turn {turned} "
                 f"(now {_judgement(key + '.current.imprecision', now['imprecision'])}) after "
                 f"{_series(key + '.imprecision_change', change)}.")
    else:
        text += (f" GRADE imprecision would stay {_judgement(key + '.current.imprecision', now['imprecision'])} "
                 "whatever one such report showed")
        if three and three["imprecision"] != now["imprecision"]:
            text += (f"; {tag(key + '.examples.1.series', three['series'])} series of "
                     f"{tag(key + '.examples.1.n', three['n'])} would make it "
                     f"{_judgement(key + '.examples.1.imprecision', three['imprecision'])}")
        text += "."
    return _m(text)
