"""The import contract of the code's floors (README, "How the code is laid out"), read from the sources.

    commands     analysis.fit, .sensitivity, .validate, .update, .serve, .warm, .cli, .outputs
    rendering    analysis.report                       (reads results only)
    results      analysis.results                      (the typed contract, summary.json)
    computation  analysis.synthesis, analysis.steps    (steps over the engine and the inputs)
                 analysis.engine, analysis.inputs
    ground       models                                (maths and PyMC models: no I/O, no config)

Imports go downward only, the rendering floor never reaches the sampler stack, and there is no cycle.
Imports inside functions count as much as those at the top of a module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLER_STACK = ("pymc", "pytensor", "jax", "jaxlib", "blackjax")

BASE = {"analysis", "analysis.errors", "analysis.timing", "analysis.processes", "analysis.digits"}
"""Small utilities with no imports of ours (the package, the input error, the stopwatch, worker processes, the
digits a number may show):
any floor may use them."""
# Each floor may import the floors named here, itself and BASE; anything of ours not listed is upward.
ALLOWED = {
    **{name: set() for name in BASE},
    "models": {"models"},
    "analysis.inputs": {"analysis.inputs", "models"},
    "analysis.results": {"analysis.results"},
    "analysis.engine": {"analysis.engine", "analysis.inputs", "analysis.results", "models"},
    "analysis.steps": {"analysis.steps", "analysis.engine", "analysis.inputs", "analysis.results", "models"},
    "analysis.synthesis": {"analysis.steps", "analysis.engine", "analysis.inputs", "analysis.results", "models"},
    "analysis.report": {"analysis.report", "analysis.results"},
}
COMMANDS = ("analysis.fit", "analysis.sensitivity", "analysis.validate", "analysis.update", "analysis.serve",
            "analysis.warm", "analysis.cli", "analysis.outputs")
"""The top floor: may import anything below it, and nothing imports it but another command."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [*ROOT.joinpath("models").rglob("*.py"), *ROOT.joinpath("analysis").rglob("*.py")]
    return {_module_name(p): p for p in files}


def _imports(name: str, path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (functions included), made absolute."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from pkg import submodule`
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
    return found


def _floor(module: str) -> str | None:
    for floor in sorted([*ALLOWED, *COMMANDS], key=len, reverse=True):
        if module == floor or module.startswith(floor + "."):
            return floor
    return None


def _ours(imported: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that `imported` names (a `from package import name` may name a function)."""
    while imported:
        if imported in modules:
            return imported
        imported = imported.rpartition(".")[0]
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _sources()
    return {name: {m for m in (_ours(i, modules) for i in _imports(name, path)) if m and m != name}
            for name, path in modules.items()}


def test_every_module_belongs_to_a_floor(graph):
    assert not [m for m in graph if _floor(m) is None]


def test_imports_go_downward_only(graph):
    upward = []
    for module, imported in graph.items():
        floor = _floor(module)
        if floor in COMMANDS:
            continue
        for target in imported:
            if _floor(target) not in ALLOWED[floor] | BASE and _floor(target) != floor:
                upward.append(f"{module} -> {target}")
    assert not upward


def test_the_rule_can_fail(tmp_path):
    """The reader sees imports inside functions and relative ones, so the contract can catch them."""
    source = tmp_path / "analysis" / "report" / "bad.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from ..steps import primary\n    import pymc\n")
    found = _imports("analysis.report.bad", source)
    assert "analysis.steps.primary" in found and "pymc" in found


def test_no_import_cycles(graph):
    """A depth-first search over our modules' imports (a package imports its `__init__` only)."""
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]) if target in trail else target)
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles


def test_rendering_never_reaches_the_sampler_stack_in_our_code(graph):
    """No module of the rendering floor imports the sampler stack, directly or through our modules."""
    sources = _sources()
    reached, todo = set(), [m for m in graph if _floor(m) == "analysis.report"]
    while todo:
        module = todo.pop()
        if module in reached:
            continue
        reached.add(module)
        todo += graph[module]
    offending = {m: sorted(i.split(".")[0] for i in _imports(m, sources[m]) if i.split(".")[0] in SAMPLER_STACK)
                 for m in reached}
    assert not {m: v for m, v in offending.items() if v}


def test_rendering_in_a_fresh_interpreter_loads_no_sampler():
    """Importing the whole rendering floor (the writer imports every figure module) loads neither PyMC,
    PyTensor nor BlackJAX. (JAX itself is loaded by `arviz_base` when it is installed: a third-party import,
    which the figure modules that use ArviZ cannot avoid.)"""
    code = ("import sys, analysis.report.writer, analysis.report.html\n"
            "print(','.join(m for m in ('pymc', 'pytensor', 'blackjax', 'analysis.engine', 'analysis.steps',"
            " 'analysis.inputs', 'models') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == ""


def test_models_do_no_input_output_and_read_no_config():
    """The ground floor is maths: no files, no tables, no plotting, no config files, no printing. (The priors
    are pydantic models: typed, validated parameters, which the config layer embeds.)"""
    banned_modules = {"matplotlib", "jinja2", "tomllib", "pandas", "analysis"}
    problems = []
    for path in ROOT.joinpath("models").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                problems += [f"{path.name}: imports {n}" for n in names if n.split(".")[0] in banned_modules]
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("open", "print"):
                problems.append(f"{path.name}: calls {node.func.id}")
    assert not problems
