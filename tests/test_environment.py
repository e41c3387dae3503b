"""pyproject.toml (the pip path, tested) and environment.yml (conda users) must pin the same stack."""

import re
import tomllib

from analysis.inputs.config import PROJECT_ROOT

CONDA_ONLY = {"python"}
CONDA_NAMES = {"python-flatbuffers": "flatbuffers"}  # conda-forge's name for a PyPI package


def _requirement(text: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", text).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def _pip_requirements() -> dict[str, str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    return dict(_requirement(r) for r in requirements)


def _conda_requirements() -> dict[str, str]:
    lines = (PROJECT_ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("dependencies:")
    entries = [line.strip()[2:] for line in lines[start + 1 :] if line.strip().startswith("- ")]
    found = dict(_requirement(e) for e in entries if not e.startswith("pip:"))
    return {CONDA_NAMES.get(name, name): spec for name, spec in found.items()}


def test_every_dependency_is_pinned_identically_in_both_files():
    pip, conda = _pip_requirements(), _conda_requirements()
    conda_packages = {k: v for k, v in conda.items() if k not in CONDA_ONLY}
    assert conda_packages == pip


def test_python_requirement_agrees():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == _conda_requirements()["python"]
