"""The shipped evidence, its traceability to the extraction, and the loader's validation rules."""

import subprocess
import sys

import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.inputs.config import PROJECT_ROOT
from analysis.inputs.evidence import load_evidence, select_counts
from analysis.inputs.patients import read_patients

REPORTS = PROJECT_ROOT / "data" / "reports.csv"
PATIENTS = PROJECT_ROOT / "data" / "patients.csv"

HEADER = "report_id,drug,n_treated,n_any_response,n_marked,default_set"


def write(tmp_path, text: str, name: str = "evidence.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path, **kwargs) -> list[str]:
    with pytest.raises(InputError) as err:
        load_evidence(path, **kwargs)
    return err.value.problems


# --- the shipped data -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reports.csv", "patients.csv"])
def test_shipped_data_is_the_extraction_unchanged(shared_literature, name):
    ours = pd.read_csv(PROJECT_ROOT / "data" / name, dtype=str, keep_default_na=False)
    extraction = pd.read_csv(shared_literature / name, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(ours, extraction)


def test_default_set_matches_the_extraction_readme():
    table = load_evidence(REPORTS)
    naltrexone = select_counts(table, "any_response", "naltrexone")
    naloxone = select_counts(table, "any_response", "naloxone")
    # "12 naltrexone reports and 1 naloxone report are in the default analysis set";
    # "crude totals of the default naltrexone set: 36 of 43 with any response".
    assert len(naltrexone) == 12 and int(naltrexone.n.sum()) == 43 and int(naltrexone.y.sum()) == 36
    assert naloxone.report_ids == ("Zheng2025",) and list(naloxone.y) == [2] and list(naloxone.n) == [2]
    excluded = {"Campbell2018_unverified", "Li2017_duplicate", "Santoso2024_priorLDN", "BritoCaldeira2023_priorLDN"}
    assert not excluded & set(naltrexone.report_ids)


def test_description_of_the_pooled_counts_follows_the_counts():
    """The report's sentences about the evidence are made of `describe()`: it must follow the counts."""
    data = select_counts(load_evidence(REPORTS), "any_response", "naltrexone")
    facts = data.describe()
    assert (facts["reports"], facts["patients"], facts["responders"]) == (12, 43, 36)
    assert facts["single_patient_reports"] + facts["series"] == 12 and facts["series_sizes"] == [2, 14]
    assert facts["reports_with_nonresponder"] == [{"report_id": "JasansBarcelo2020", "y": 7, "n": 8},
                                                  {"report_id": "Series14_Menta2024", "y": 8, "n": 14}]
    assert facts["all_responder_reports"] == 10 and facts["largest_report"] == "Series14_Menta2024"
    fewer = data.subset([rid != "Series14_Menta2024" for rid in data.report_ids]).describe()
    assert (fewer["reports"], fewer["patients"], fewer["responders"]) == (11, 29, 28)
    assert fewer["contrast_reports"] == ["JasansBarcelo2020"] and fewer["largest_report"] == "JasansBarcelo2020"


def test_blank_outcome_counts_drop_out_instead_of_counting_as_zero():
    table = load_evidence(REPORTS, outcomes=("complete",))
    complete = select_counts(table, "complete", "naltrexone")
    frame = table.frame.set_index("report_id")
    graded = frame[(frame["drug"] == "naltrexone") & frame["included"] & frame["n_complete"].notna()]
    assert set(complete.report_ids) == set(graded.index)
    assert "JasansBarcelo2020" not in complete.report_ids  # n_complete blank there
    assert "Ibrahim2017" in complete.report_ids  # n_complete is a real 0 there
    assert complete.y[complete.report_ids.index("Ibrahim2017")] == 0


def test_data_dictionary_documents_every_column():
    dictionary = (PROJECT_ROOT / "data" / "README.md").read_text()
    for path in (REPORTS, PATIENTS):
        for column in pd.read_csv(path, nrows=0).columns:
            assert f"`{column}`" in dictionary, f"{path.name}: column {column} is not documented"


# --- a user's own table ------------------------------------------------------------------------------


def test_minimal_user_table_with_only_required_columns(tmp_path):
    path = write(tmp_path, "report_id,drug,n_treated,n_any_response\nA,naltrexone,4,3\nB,naltrexone,1,1\n")
    data = select_counts(load_evidence(path), "any_response", "naltrexone")
    assert data.report_ids == ("A", "B") and list(data.y) == [3, 1] and list(data.n) == [4, 1]


def test_spreadsheet_exports_are_accepted(tmp_path):
    text = "report_id;drug;n_treated;n_any_response\r\nA;Naltrexone;4;3.0\r\nB;naltrexone;2;2\r\n"
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    data = select_counts(load_evidence(path), "any_response", "naltrexone")
    assert list(data.y) == [3, 2]


def test_decimal_commas_are_numbers_in_semicolon_files_only(tmp_path):
    """Spreadsheets in decimal-comma locales export with semicolons; in a comma-separated file a comma
    inside a number is refused with a hint, never read as missing or as another number."""
    header = "report_id;drug;n_treated;n_any_response;dose_mg_min\n"
    table = load_evidence(write(tmp_path, header + "A;naltrexone;4;3,0;4,5\nB;naltrexone;2;2;1,5\n", "semicolon.csv"))
    assert list(select_counts(table, "any_response", "naltrexone").y) == [3, 2]
    assert list(table.frame["dose_mg_min"]) == [4.5, 1.5]
    path = write(tmp_path, 'report_id,drug,n_treated,n_any_response,dose_mg_min\nA,naltrexone,4,3,"4,5"\n', "comma.csv")
    [line] = problems(path)
    assert line.startswith(f"{path}: row 1 (report_id A), column dose_mg_min: '4,5' is not a number")
    assert "write 4.5 here" in line


def test_default_set_column_excludes_rows(tmp_path):
    path = write(tmp_path, f"{HEADER}\nA,naltrexone,4,3,,include\nB,naltrexone,2,2,,exclude_duplicate\n")
    assert select_counts(load_evidence(path), "any_response", "naltrexone").report_ids == ("A",)


# --- bad input: one line naming file, row (report id) and column -------------------------------------

BAD_ROWS = {
    "negative count": ("A,naltrexone,4,-1,,include", "n_any_response", "'-1' is not a whole number"),
    "fractional count": ("A,naltrexone,4,2.5,,include", "n_any_response", "'2.5' is not a whole number"),
    "non-numeric count": ("A,naltrexone,4,three,,include", "n_any_response", "'three' is not a whole number"),
    "count above n": ("A,naltrexone,4,5,,include", "n_any_response", "5 is larger than n_treated (4)"),
    "zero treated": ("A,naltrexone,0,0,,include", "n_treated", "at least 1, got 0"),
    "blank treated": ("A,naltrexone,,0,,include", "n_treated", "at least 1, got blank"),
    "unknown drug": ("A,naltrexon,4,3,,include", "drug", "unknown drug 'naltrexon'"),
    "nesting broken": ("A,naltrexone,4,2,3,include", "n_marked", "3 is larger than n_any_response (2)"),
    "bad default_set": ("A,naltrexone,4,2,,maybe", "default_set", "neither 'include' nor 'exclude_<reason>'"),
}


@pytest.mark.parametrize("case", BAD_ROWS, ids=list(BAD_ROWS))
def test_bad_row_names_file_row_report_and_column(tmp_path, case):
    row, column, message = BAD_ROWS[case]
    path = write(tmp_path, f"{HEADER}\nOK1,naltrexone,3,3,3,include\n{row}\n")
    [line] = problems(path)
    assert line.startswith(f"{path}: row 2 (report_id A), column {column}: ")
    assert message in line


def test_duplicate_report_ids(tmp_path):
    path = write(tmp_path, f"{HEADER}\nA,naltrexone,3,3,,include\nA,naltrexone,2,1,,include\n")
    assert problems(path) == [f"{path}: row 2 (report_id A), column report_id: duplicate of row 1"]


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    path = write(tmp_path, f"{HEADER}\nA,naltrexone,3,4,,include\nB,aspirin,2,1,,include\n")
    assert len(problems(path)) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("report_id,drug,n_treated,n_any_response\n", "no data rows"),
        ("report_id,drug,n_any_response\nA,naltrexone,1\n", "missing required column 'n_treated'"),
    ],
)
def test_unusable_files(tmp_path, text, message):
    path = write(tmp_path, text)
    [line] = problems(path)
    assert line.startswith(str(path)) and message in line


def test_missing_file(tmp_path):
    assert problems(tmp_path / "nope.csv") == [f"{tmp_path / 'nope.csv'}: file not found"]


def test_outcome_column_required_only_for_the_analysed_outcome(tmp_path):
    path = write(tmp_path, "report_id,drug,n_treated,n_any_response\nA,naltrexone,4,3\n")
    assert problems(path, outcomes=("complete",)) == [f"{path}: missing required column 'n_complete'"]


def _run_fit(*args):
    return subprocess.run(
        [sys.executable, "-m", "analysis.fit", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120
    )


def test_command_reports_bad_data_in_one_line_without_traceback(tmp_path):
    path = write(tmp_path, f"{HEADER}\nA,naltrexone,3,4,,include\n")
    run = _run_fit("--data", str(path), "--out", str(tmp_path / "out"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {path}: row 1 (report_id A), column n_any_response: 4 is larger than n_treated (3)"
    ]
    assert "Traceback" not in run.stderr and not (tmp_path / "out").exists()


def test_command_refuses_data_without_reports_of_the_drug(tmp_path):
    path = write(tmp_path, "report_id,drug,n_treated,n_any_response\nA,naloxone,2,2\n")
    run = _run_fit("--data", str(path))
    assert run.returncode == 2
    assert "no included report of drug 'naltrexone' has a count in column n_any_response" in run.stderr


# --- the per-patient companion table --------------------------------------------------------------


def shipped_report_ids() -> set[str]:
    return set(load_evidence(REPORTS).frame["report_id"])


def test_shipped_patient_table_passes_its_checks():
    frame = read_patients(PATIENTS, shipped_report_ids(), REPORTS)
    assert len(frame) == len(pd.read_csv(PATIENTS))


def test_patient_table_errors_name_file_row_and_column(tmp_path):
    wrong_columns = write(tmp_path, "a,b\n1,2\n", "patients.csv")
    with pytest.raises(InputError) as err:
        read_patients(wrong_columns, shipped_report_ids(), REPORTS)
    assert err.value.problems == [f"{wrong_columns}: missing required column 'report_id'",
                                  f"{wrong_columns}: missing required column 'patient_id'"]
    bad = write(tmp_path, "report_id,patient_id,any_response\nAlbers2O17,P1,1\nAlbers2017,P1,yes\n"
                "Albers2017,P1,NA\nAlbers2017,,0\n", "bad.csv")
    with pytest.raises(InputError) as err:
        read_patients(bad, shipped_report_ids(), REPORTS)
    assert err.value.problems == [
        f"{bad}: row 1 (report_id Albers2O17), column report_id: 'Albers2O17' is not a report of reports.csv",
        f"{bad}: row 2 (report_id Albers2017), column any_response: 'yes' is not 1 (yes), 0 (no) or blank (not graded)",
        f"{bad}: row 3 (report_id Albers2017), column patient_id: duplicate of row 2",
        f"{bad}: row 4 (report_id Albers2017), column patient_id: patient_id is blank",
    ]


def test_a_bad_patient_table_stops_the_command_before_any_fit(tmp_path):
    bad = write(tmp_path, "report_id,patient_id\nNobody2030,P1\n", "patients.csv")
    done = subprocess.run([sys.executable, "-m", "analysis.fit", "--patients", str(bad), "--out", str(tmp_path / "out")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and not (tmp_path / "out").exists()
    assert done.stderr.strip() == (f"error: {bad}: no row names a report of {REPORTS}: this per-patient table "
                                   'belongs to other data (give yours, or set data.patients_path = "" for none)')
