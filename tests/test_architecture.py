"""The folder layout is the data flow: imports run one way, the agent stands apart.

plugin -> cli -> sheet -> scripted -> factory -> probes -> lab (providers inside) -> report -> profiles -> errors
"""
from __future__ import annotations

import ast
import inspect
import pydoc
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_connlab"
LAYERS = ["errors", "profiles", "report", "lab", "probes", "factory", "scripted", "sheet", "cli", "plugin"]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Every pytest_connlab module ``module`` imports (type-checking imports included)."""
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1] if node.level > 1 else here
                name = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("pytest_connlab"):
                name = node.module.removeprefix("pytest_connlab").lstrip(".")
            else:
                continue
            if node.module is None or node.level == 0 and node.module == "pytest_connlab":
                targets |= {f"{name}.{a.name}".lstrip(".") for a in node.names}
            else:
                targets.add(name)
        elif isinstance(node, ast.Import):
            targets |= {a.name.removeprefix("pytest_connlab.") for a in node.names
                        if a.name.startswith("pytest_connlab.")}
    return targets


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else None


MODULES = _modules()
EDGES = {m: _imports(m, p) for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_no_module_imports_a_layer_above_its_own(module):
    above = sorted(t for t in EDGES[module] if (_layer(t) or -1) > _layer(module))  # type: ignore[operator]
    assert not above, f"{module} imports {above}, above it in {' <- '.join(LAYERS)}"


def test_the_agent_imports_nothing_outside_itself():
    outside = {m: sorted(t for t in EDGES[m] if not t.startswith("agent")) for m in MODULES if m.startswith("agent")}
    assert not {m: t for m, t in outside.items() if t}


def test_no_import_circle_across_packages():
    def package(m: str) -> str:
        return m.split(".")[0]
    graph: dict[str, set[str]] = {}
    for module, targets in EDGES.items():
        graph.setdefault(package(module), set()).update(package(t) for t in targets if package(t) != package(module))
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))
    assert not sorted(p for p in graph if reaches(p, p, set()))


def test_providers_use_only_the_labs_foundations():
    """Inside lab/, providers sit below the lab and its hosts: they may use names, the run folder,
    addresses and the topology, nothing that uses them."""
    allowed = {"lab.names", "lab.rundir", "lab.addressing", "lab.topology"}
    wrong = {m: sorted(t for t in EDGES[m] if t.startswith("lab.") and not t.startswith("lab.providers")
                       and t not in allowed) for m in MODULES if m.startswith("lab.providers")}
    assert not {m: t for m, t in wrong.items() if t}


def test_the_reaper_imports_no_provider():
    providers = sorted(t for t in EDGES["lab.reaper"] if t.startswith("lab.providers") and t != "lab.providers.base")
    assert not providers, f"the reaper imports {providers}: providers sweep their own leftovers"


def test_the_probe_facade_shows_each_probes_parameters():
    from pytest_connlab.probes import Probes
    from pytest_connlab.probes.listen_backlog import listen_backlog as run
    probes = object.__new__(Probes)
    probes.lab = object()  # type: ignore[assignment]
    shown = inspect.signature(probes.listen_backlog)
    assert list(shown.parameters) == list(inspect.signature(run).parameters)[1:]
    assert "backlog" in shown.parameters
    assert "backlog" in pydoc.render_doc(probes.listen_backlog)
