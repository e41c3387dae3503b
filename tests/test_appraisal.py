"""The risk-of-bias appraisal, the PRISMA 2020 counts and the search methods: the shipped copies, the
loader's validation rules, that the report's numbers follow the files, and the two figures."""

import csv
import io
import re

import matplotlib.colors as mcolors
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.inputs.appraisal import ANSWERS, CONCERNS, CORE_ITEMS, ITEM_KEYS, ITEMS, load_appraisal, overall_by_rule
from analysis.inputs.config import PROJECT_ROOT
from analysis.inputs.evidence import load_evidence, select_counts
from analysis.inputs.search import load_excluded, search_methods
from analysis.report.figures import save
from analysis.report.figures.appraisal import ANSWER_STYLE, prisma, risk_of_bias
from analysis.steps.evidence import risk_of_bias as risk_of_bias_block
from analysis.steps.prisma import prisma_counts

DATA = PROJECT_ROOT / "data"
APPRAISAL = DATA / "appraisal.csv"
EXCLUDED = DATA / "excluded_on_reading.csv"
REPORTS = DATA / "reports.csv"
SEARCH = DATA / "search.md"
COPIES = ("appraisal.csv", "appraisal.md", "search.md", "excluded_on_reading.csv")


@pytest.fixture(scope="module")
def evidence():
    return load_evidence(REPORTS)


@pytest.fixture(scope="module")
def report_ids(evidence):
    return tuple(evidence.frame["report_id"])


def read_rows(path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def write_rows(path, header: list[str], rows: list[dict]):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def modified_appraisal(tmp_path, change=None, header_change=None, name="appraisal.csv"):
    """A temp copy of the shipped appraisal; `change(rows)` edits the row dicts in place."""
    header, rows = read_rows(APPRAISAL)
    if change:
        change(rows)
    if header_change:
        header = header_change(header)
        rows = [{k: v for k, v in r.items() if k in header} for r in rows]
    return write_rows(tmp_path / name, header, rows)


def row_of(rows, report_id) -> dict:
    return next(r for r in rows if r["report_id"] == report_id)


def problems(path, report_ids, **kwargs) -> list[str]:
    with pytest.raises(InputError) as err:
        load_appraisal(path, report_ids, **kwargs)
    return err.value.problems


# --- the shipped files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COPIES)
def test_data_copies_are_the_shared_files_byte_for_byte(shared_literature, name):
    assert (DATA / name).read_bytes() == (shared_literature / name).read_bytes()


def test_vocabulary_and_items_are_those_appraisal_md_defines():
    text = (DATA / "appraisal.md").read_text(encoding="utf-8")
    answers = next(paragraph for paragraph in text.split("\n\n") if paragraph.startswith("Answers:"))
    before_overall, after_overall = answers.split("`overall`")
    assert tuple(re.findall(r"`([a-z_]+)`", before_overall)) == ANSWERS
    assert tuple(re.findall(r"`(low|moderate|high)`", after_overall)) == CONCERNS
    table = dict(re.findall(r"^\| (q\d_[a-z_]+) \| .* \| ([a-z]+) \|$", text, flags=re.MULTILINE))
    assert table == {item.key: item.domain for item in ITEMS}
    assert "Core items: Q2 exposure, Q3 outcome, Q4 alternative causes, Q8 reporting." in text
    assert CORE_ITEMS == ("q2_exposure", "q3_outcome", "q4_alternative_causes", "q8_reporting")


def test_data_dictionary_documents_the_appraisal_and_exclusion_columns():
    dictionary = (DATA / "README.md").read_text(encoding="utf-8")
    for path in (APPRAISAL, EXCLUDED):
        for column in pd.read_csv(path, nrows=0).columns:
            if not re.fullmatch(r"q[2-7]_note", column):  # documented as `q1_note` ... `q8_note`
                assert f"`{column}`" in dictionary, f"{path.name}: column {column} is not documented"
    assert "## `search.md`" in dictionary


def test_shipped_appraisal_loads_against_the_shipped_reports(evidence, report_ids):
    appraisal = load_appraisal(APPRAISAL, report_ids)
    assert appraisal.report_ids == report_ids
    for report in appraisal:
        assert set(report.answers) == set(ITEM_KEYS) and all(a in ANSWERS for a in report.answers.values())
        assert report.overall == overall_by_rule(report.answers)
        assert all(report.notes[key] for key in ITEM_KEYS) and report.overall_note
    # appraisal.md: "Default set: 10 moderate, 3 high ... All four rows outside the default set are high."
    included = evidence.frame.set_index("report_id")["included"]
    default = [appraisal.concern(r) for r in report_ids if included[r]]
    outside = [appraisal.concern(r) for r in report_ids if not included[r]]
    assert (default.count("moderate"), default.count("high"), default.count("low")) == (10, 3, 0)
    assert outside == ["high"] * 4
    assert appraisal.note("Albers2017", "q5_rechallenge").startswith("Flares on stopping")
    assert appraisal.item("q4_alternative_causes").domain == "causality"


def test_summary_shape(report_ids):
    summary = load_appraisal(APPRAISAL, report_ids).as_summary()
    assert list(summary) == list(report_ids)
    assert all(list(entry) == ["overall", *ITEM_KEYS] for entry in summary.values())
    assert summary["McBride2020"]["overall"] == "high" and summary["McBride2020"]["q3_outcome"] == "no"


def test_item_counts_count_every_report_once(report_ids):
    appraisal = load_appraisal(APPRAISAL, report_ids)
    counts = appraisal.item_counts()
    assert list(counts) == list(ITEM_KEYS)
    assert all(list(tally) == list(ANSWERS) and sum(tally.values()) == len(report_ids) for tally in counts.values())
    assert counts["q8_reporting"] == {"yes": 0, "partly": 12, "no": 5, "unclear": 0, "not_applicable": 0}
    assert appraisal.overall_counts() == {"low": 0, "moderate": 10, "high": 7}


def test_concern_filter_leaves_out_high_concern(report_ids):
    appraisal = load_appraisal(APPRAISAL, report_ids)
    moderate = appraisal.reports_with_concern_at_most("moderate")
    assert len(moderate) == 10 and all(appraisal.concern(r) == "moderate" for r in moderate)
    assert "McBride2020" not in moderate and "Albers2017" in moderate
    assert appraisal.reports_with_concern_at_most("high") == report_ids
    assert appraisal.reports_with_concern_at_most("low") == ()
    with pytest.raises(InputError, match="unknown level 'medium'"):
        appraisal.reports_with_concern_at_most("medium")
    with pytest.raises(KeyError):
        appraisal.concern("Nobody2020")


def test_changing_one_answer_changes_the_counts_and_the_summary(tmp_path, report_ids):
    before = load_appraisal(APPRAISAL, report_ids)

    def change(rows):
        row_of(rows, "Albers2017")["q6_dose_response"] = "yes"  # was unclear; not a core item

    after = load_appraisal(modified_appraisal(tmp_path, change), report_ids)
    assert after.as_summary()["Albers2017"]["q6_dose_response"] == "yes"
    assert {r: s for r, s in after.as_summary().items() if r != "Albers2017"} == {
        r: s for r, s in before.as_summary().items() if r != "Albers2017"}
    old, new = before.item_counts()["q6_dose_response"], after.item_counts()["q6_dose_response"]
    assert new["yes"] == old["yes"] + 1 and new["unclear"] == old["unclear"] - 1

    def core_change(rows):  # a core item to `no` makes the report high by the rule
        row = row_of(rows, "Albers2017")
        row["q3_outcome"], row["overall"] = "no", "high"

    after = load_appraisal(modified_appraisal(tmp_path, core_change, name="core.csv"), report_ids)
    assert after.concern("Albers2017") == "high"
    assert "Albers2017" not in after.reports_with_concern_at_most("moderate")
    assert after.overall_counts()["high"] == before.overall_counts()["high"] + 1


def test_answers_are_read_case_insensitively(tmp_path, report_ids):
    def change(rows):
        row_of(rows, "Kollman2018")["q1_selection"] = "Not applicable"
        row_of(rows, "Kollman2018")["overall"] = "Moderate"

    appraisal = load_appraisal(modified_appraisal(tmp_path, change), report_ids)
    assert appraisal.as_summary()["Kollman2018"]["q1_selection"] == "not_applicable"
    assert appraisal.concern("Kollman2018") == "moderate"


def test_note_columns_are_optional(tmp_path, report_ids):
    path = modified_appraisal(tmp_path, header_change=lambda h: [c for c in h if not c.endswith("_note")])
    appraisal = load_appraisal(path, report_ids)
    assert appraisal.note("Albers2017", "q1_selection") == "" and appraisal.note("Albers2017", "overall") == ""
    assert appraisal.as_summary() == load_appraisal(APPRAISAL, report_ids).as_summary()


# --- bad appraisal files: one line naming file, row (report id) and column ---------------------------


def _set(report_id, column, value):
    def change(rows):
        row_of(rows, report_id)[column] = value
    return change


BAD_APPRAISALS = {
    # case: (change, row number, report id, column, message)
    "unknown report id": (_set("Albers2017", "report_id", "Albers2071"), 1, "Albers2071", "report_id",
                          "'Albers2071' is not a report of the evidence table"),
    "unknown answer": (_set("Cao2018", "q5_rechallenge", "maybe"), 3, "Cao2018", "q5_rechallenge",
                       "'maybe' is not an answer (allowed: yes, partly, no, unclear, not_applicable"),
    "blank answer": (_set("Cao2018", "q7_followup", ""), 3, "Cao2018", "q7_followup", "blank is not an answer"),
    "unknown concern": (_set("Cao2018", "overall", "medium"), 3, "Cao2018", "overall",
                        "'medium' is not a concern level (allowed: low, moderate, high"),
    "overall against the rule": (_set("McBride2020", "overall", "moderate"), 9, "McBride2020", "overall",
                                 "'moderate' but the overall rule of appraisal.md gives 'high'"),
    "repeated id": (_set("Ibrahim2017", "report_id", "Albers2017"), 2, "Albers2017", "report_id",
                    "duplicate of row 1"),
    "blank id": (_set("Ibrahim2017", "report_id", ""), 2, "<blank>", "report_id", "report_id is blank"),
}


@pytest.mark.parametrize("case", BAD_APPRAISALS, ids=list(BAD_APPRAISALS))
def test_bad_row_is_one_line_naming_file_row_report_and_column(tmp_path, report_ids, case):
    change, row, report_id, column, message = BAD_APPRAISALS[case]
    path = modified_appraisal(tmp_path, change)
    required = [r for r in report_ids if r != "Albers2017"] if case == "unknown report id" else None
    required = [r for r in report_ids if r != "Ibrahim2017"] if case in ("repeated id", "blank id") else required
    [line] = problems(path, report_ids, required_ids=required)
    assert line.startswith(f"{path}: row {row} (report_id {report_id}), column {column}: ")
    assert message in line


def test_missing_column_is_one_line(tmp_path, report_ids):
    path = modified_appraisal(tmp_path, header_change=lambda h: [c for c in h if c != "q4_alternative_causes"])
    assert problems(path, report_ids) == [f"{path}: missing required column 'q4_alternative_causes'"]


def test_report_of_the_evidence_table_without_a_row_is_one_line(tmp_path, report_ids):
    header, rows = read_rows(APPRAISAL)
    path = write_rows(tmp_path / "appraisal.csv", header, [r for r in rows if r["report_id"] != "Zheng2025"])
    [line] = problems(path, report_ids)
    assert line.startswith(f"{path}: no row (report_id Zheng2025), column report_id: ")
    assert "has no appraisal" in line
    # only the reports the caller requires must be there
    assert load_appraisal(path, report_ids, required_ids=[r for r in report_ids if r != "Zheng2025"])


def test_every_problem_is_reported_not_just_the_first(tmp_path, report_ids):
    def change(rows):
        row_of(rows, "Cao2018")["q5_rechallenge"] = "maybe"
        row_of(rows, "Gavali2024")["overall"] = "severe"

    header, rows = read_rows(modified_appraisal(tmp_path, change))
    path = write_rows(tmp_path / "two.csv", header, [r for r in rows if r["report_id"] != "Zheng2025"])
    assert len(problems(path, report_ids)) == 3


def test_unreadable_appraisal_files(tmp_path, report_ids):
    assert problems(tmp_path / "nope.csv", report_ids) == [f"{tmp_path / 'nope.csv'}: file not found"]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert problems(empty, report_ids) == [f"{empty}: the file is empty"]


# --- the PRISMA 2020 flow ----------------------------------------------------------------------------


def search_md_flow() -> dict[str, tuple[str, str]]:
    """The flow table of search.md: {step: (reports, detail)}. Read here only, to cross-check the code."""
    text = SEARCH.read_text(encoding="utf-8")
    section = text.split("## Flow of reports (PRISMA 2020)")[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|")]
    return {step: (reports, detail) for step, reports, detail in rows[2:]}


def shipped_counts(evidence):
    return prisma_counts(evidence.frame, load_excluded(EXCLUDED), "naltrexone", "naloxone")


def test_prisma_counts_equal_the_flow_table_of_search_md(evidence):
    flow = search_md_flow()
    counts = shipped_counts(evidence)
    assert counts["assessed"] == int(flow["assessed for eligibility"][0])
    assert counts["excluded_on_reading"] == int(flow["excluded on reading"][0])
    assert sum(counts["excluded_reasons"].values()) == counts["excluded_on_reading"]
    assert counts["in_table"] == int(flow["entered the evidence table"][0])
    assert counts["outside_default"] == int(flow["outside the default analysis"][0])
    wording = {"exclude_duplicate": "duplicate patient", "exclude_unverified": "primary source not identified",
               "exclude_no_outcome": "outcome not described"}
    detail = flow["outside the default analysis"][1]
    assert {wording[k]: v for k, v in counts["outside_reasons"].items()} == {
        label.strip(): int(n) for label, n in re.findall(r"([a-z ]+?) (\d+)", detail.split("(")[0].replace(",", ""))}
    reports, detail = flow["in the default analysis"]
    assert sum(counts["included_reports"].values()) == int(reports)
    by_drug = {drug: (int(r), int(p)) for drug, r, p in re.findall(r"(\w+) (\d+) reports? \((\d+) patients\)", detail)}
    assert counts["included_reports"] == {d: r for d, (r, _) in by_drug.items()}
    assert counts["included_patients"] == {d: p for d, (_, p) in by_drug.items()}
    assert list(counts) == ["assessed", "excluded_on_reading", "excluded_reasons", "in_table", "outside_default",
                            "outside_reasons", "included_reports", "included_patients"]


def test_prisma_counts_from_the_raw_string_table_agree(evidence):
    raw = pd.read_csv(REPORTS, dtype=str, keep_default_na=False)
    excluded = pd.read_csv(EXCLUDED, dtype=str, keep_default_na=False)
    assert prisma_counts(raw, excluded, "naltrexone", "naloxone") == shipped_counts(evidence)


def test_removing_an_excluded_record_changes_assessed_and_excluded_by_one(tmp_path, evidence):
    header, rows = read_rows(EXCLUDED)
    path = write_rows(tmp_path / "excluded_on_reading.csv", header, rows[1:])
    before = shipped_counts(evidence)
    after = prisma_counts(evidence.frame, load_excluded(path), "naltrexone", "naloxone")
    assert after["assessed"] == before["assessed"] - 1
    assert after["excluded_on_reading"] == before["excluded_on_reading"] - 1
    reason = rows[0]["reason"]
    assert after["excluded_reasons"].get(reason, 0) == before["excluded_reasons"][reason] - 1
    assert {k: after[k] for k in ("in_table", "outside_default", "included_reports", "included_patients")} == {
        k: before[k] for k in ("in_table", "outside_default", "included_reports", "included_patients")}


def test_prisma_counts_without_a_record_of_exclusions(evidence):
    counts = prisma_counts(evidence.frame, None, "naltrexone", None)
    assert counts["assessed"] is None and counts["excluded_on_reading"] is None and counts["excluded_reasons"] == {}
    assert counts["included_reports"] == {"naltrexone": 12, "naloxone": 1}  # other included drugs still listed


def test_bad_excluded_files(tmp_path):
    path = tmp_path / "excluded.csv"
    path.write_text("record_id,year,description\nA,2019,x\n")
    with pytest.raises(InputError) as err:
        load_excluded(path)
    assert err.value.problems == [f"{path}: missing required column 'reason'"]
    path.write_text("record_id,reason\nA,not HHD\nA,not HHD\nB,\n")
    with pytest.raises(InputError) as err:
        load_excluded(path)
    assert err.value.problems == [f"{path}: row 2 (record_id A), column record_id: duplicate of row 1",
                                  f"{path}: row 3 (record_id B), column reason: the reason for exclusion is blank"]


# --- the search methods -----------------------------------------------------------------------------


def test_search_methods_split_search_md_into_sections_and_bullets():
    text = SEARCH.read_text(encoding="utf-8")
    methods = search_methods(text)
    assert methods["title"].startswith("How the evidence was found")
    assert {"Search", "Not done"} <= set(methods["sections"])
    [bullets] = methods["sections"]["Search"]
    search_section = text.split("## Search")[1].split("\n## ")[0]
    assert len(bullets["items"]) == sum(line.startswith("- ") for line in search_section.splitlines())
    assert bullets["items"][0].startswith("**Sources.**") and "PRISMA items 6 and 7)." in bullets["items"][0]
    assert all("\n" not in item and "  " not in item for item in bullets["items"])
    [paragraph] = methods["sections"]["Not done"]
    assert paragraph["type"] == "paragraph" and paragraph["text"].startswith("No registered protocol;")
    assert paragraph["text"].endswith("overlap between reports).")
    table = next(b for b in methods["sections"]["Flow of reports (PRISMA 2020)"] if b["type"] == "table")
    assert table["header"] == ["step", "reports", "detail"] and table["rows"][0][:2] == ["assessed for eligibility",
                                                                                         "22"]


def test_search_methods_is_general_markdown():
    methods = search_methods("Intro line\none more\n\n## A\n* one\n  two\n- three\n\nA paragraph.\n\n## B\n")
    assert methods["title"] == ""
    assert methods["sections"] == {
        "": [{"type": "paragraph", "text": "Intro line one more"}],
        "A": [{"type": "bullets", "items": ["one two", "three"]}, {"type": "paragraph", "text": "A paragraph."}],
        "B": [],
    }


# --- the figures ------------------------------------------------------------------------------------


def rob_block(evidence, appraisal) -> dict:
    """The summary's risk-of-bias block, which the figure draws: every appraised report, counts over the pooled."""
    pooled = select_counts(evidence, "any_response", "naltrexone").report_ids
    return risk_of_bias_block(appraisal, pooled).to_dict()


def test_figures_draw_for_the_shipped_data(tmp_path, evidence, report_ids):
    rob = rob_block(evidence, load_appraisal(APPRAISAL, report_ids))
    save(risk_of_bias(rob), tmp_path, "risk_of_bias", svg=True)
    save(prisma(shipped_counts(evidence)), tmp_path, "prisma", svg=True)
    for name in ("risk_of_bias", "prisma"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000 and (tmp_path / f"{name}.svg").stat().st_size > 0


def test_traffic_lights_follow_a_modified_appraisal(tmp_path, evidence, report_ids):
    def change(rows):
        for row in rows:
            row["q1_selection"] = "yes"

    figure = risk_of_bias(rob_block(evidence, load_appraisal(modified_appraisal(tmp_path, change), report_ids)))
    lights = figure.axes[0]
    first_column = [c.get_facecolor()[0] for c in lights.collections if c.get_offsets()[0][0] == 0]
    assert len(first_column) == len(report_ids)
    assert all(mcolors.to_hex(c) == ANSWER_STYLE["yes"][0].lower() for c in first_column)


@pytest.mark.parametrize("variant", ["shipped", "long reasons, three drugs, no exclusion record"])
def test_prisma_text_stays_inside_its_boxes(evidence, variant):
    counts = shipped_counts(evidence)
    if variant != "shipped":
        counts = dict(counts, assessed=None, excluded_on_reading=None, excluded_reasons={},
                      outside_reasons={"exclude_a_very_long_reason_written_by_a_user_" * 3: 2, "exclude_duplicate": 1},
                      included_reports={"naltrexone": 12, "naloxone": 1, "methylnaltrexone": 3},
                      included_patients={"naltrexone": 43, "naloxone": 2, "methylnaltrexone": 7})
    figure = prisma(counts)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    boxes = {p.get_gid()[4:]: p.get_window_extent(renderer) for p in ax.patches if (p.get_gid() or "")[:4] == "box:"}
    texts = {t.get_gid()[5:]: t for t in ax.texts if (t.get_gid() or "").startswith("text:")}
    assert set(boxes) == set(texts) == {"identified", "assessed", "excluded", "in_table", "outside", "included"}
    for name, text in texts.items():
        inner, outer = text.get_window_extent(renderer), boxes[name]
        assert outer.x0 < inner.x0 and inner.x1 < outer.x1 and outer.y0 < inner.y0 and inner.y1 < outer.y1, name
    shown = {name: text.get_text() for name, text in texts.items()}
    assert "Records screened (n = not recorded)" in shown["identified"]
    if variant == "shipped":
        assert "(n = 22)" in shown["assessed"] and "naltrexone: 12 reports, 43 patients" in shown["included"]
        assert "duplicate patient: 1" in shown["outside"]
    else:
        assert "(n = not recorded)" in shown["assessed"] and "(n = not recorded)" in shown["excluded"]
        assert "methylnaltrexone: 3 reports, 7 patients" in shown["included"]
