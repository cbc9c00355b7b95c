"""The import rule of the package (docs/architecture.md), checked by parsing every module's imports.

Every ``import`` and ``from ... import`` counts, at module level or inside a function, except those in an
``if TYPE_CHECKING:`` block (type hints only, never executed). The rule:

* a family (``neurodyn/families/**``) imports only the leaf modules (:data:`FAMILY_IMPORTS`), the family
  protocol ``neurodyn.families.base`` and its own package: never ``runner``, ``compare``, ``scenario``,
  ``sweep``, ``cli``, ``api``, nor another family;
* a leaf module (:data:`LEAVES`) imports no neurodyn module but other leaves;
* no module outside ``neurodyn/families`` imports a family by name (the registry loads families from
  their import path, a string);
* no two modules of a family import each other (directly or through others of the family).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "neurodyn"

#: modules a family may import: everything here imports only other modules of this set
FAMILY_IMPORTS = frozenset(
    {
        "neurodyn.errors",
        "neurodyn.quantities",
        "neurodyn.schema",
        "neurodyn.stepping",
        "neurodyn.rows",
        "neurodyn.resources",
        "neurodyn.storage",
        "neurodyn.progress",
        "neurodyn.plotting",
    }
)
#: the leaf modules: ``registry`` is one by its imports (it names families only as strings and imports
#: them on demand), though families have no use for it
LEAVES = FAMILY_IMPORTS | {"neurodyn.registry"}
#: the family protocol, importable by every family
PROTOCOL = frozenset({"neurodyn.families", "neurodyn.families.base"})
#: names a leaf or family may import from the package root itself (defined there, loading nothing)
ROOT_NAMES = frozenset({"__version__"})


def module_name(path: Path) -> str:
    """Dotted name of the module in ``path`` (a file under :data:`ROOT`)."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(name: str, source: str, known: set[str]) -> list[tuple[int, str]]:
    """``(line, module)`` of every neurodyn module that ``source`` (the module ``name``) imports when run.

    Function-level imports count; ``if TYPE_CHECKING:`` blocks do not (their ``else`` does). ``from
    package import x`` counts as importing ``package.x`` when that is a module in ``known``; a name other
    than :data:`ROOT_NAMES` taken from the package root counts as importing ``neurodyn`` itself.
    """
    is_package = name in known and (ROOT.parent / name.replace(".", "/") / "__init__.py").is_file()
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    found.append((node.lineno, sub))
                elif base == "neurodyn" and alias.name in ROOT_NAMES:
                    continue
                else:
                    found.append((node.lineno, base))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return [(line, mod) for line, mod in found if mod == "neurodyn" or mod.startswith("neurodyn.")]


def family_of(module: str) -> str | None:
    """``neurodyn.families.<name>`` for a module of that family, else None (the protocol is no family)."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[:2] == ["neurodyn", "families"] and parts[2] != "base":
        return ".".join(parts[:3])
    return None


def _within(module: str, targets: frozenset[str] | set[str]) -> bool:
    """Whether ``module`` is one of ``targets`` or inside one of them (a module of a leaf package)."""
    return any(module == t or module.startswith(t + ".") for t in targets)


def violations(name: str, source: str, known: set[str]) -> list[str]:
    """Every import of ``source`` (the module ``name``) that breaks the rule, as readable lines."""
    out = []
    own = family_of(name)
    in_families = name == "neurodyn.families" or name.startswith("neurodyn.families.")
    for line, target in imports(name, source, known):
        if in_families:
            allowed = _within(target, FAMILY_IMPORTS) or target in PROTOCOL or (own and _within(target, {own}))
            if not allowed:
                out.append(f"{name}:{line} imports {target}: a family imports only leaf modules and its own package")
        elif _within(name, LEAVES):
            if not _within(target, LEAVES):
                out.append(f"{name}:{line} imports {target}: a leaf module imports only leaf modules")
        elif family_of(target) is not None:
            out.append(f"{name}:{line} imports {target}: only the registry finds families (by name)")
    return out


def test_every_module_keeps_the_import_rule():
    modules = all_modules()
    known = set(modules)
    assert {"neurodyn.stepping", "neurodyn.schema", "neurodyn.rows", "neurodyn.families.base"} <= known
    assert LEAVES <= known, "a leaf module named here no longer exists"
    bad = [v for name, path in modules.items() for v in violations(name, path.read_text(), known)]
    assert bad == []


def test_no_family_module_imports_itself_back():
    """Within a family, the modules form no import cycle (function-level imports included)."""
    modules = all_modules()
    known = set(modules)
    graph = {
        name: {t for _, t in imports(name, path.read_text(), known) if t != name and family_of(t) == family_of(name)}
        for name, path in modules.items()
        if family_of(name) is not None
    }
    cycles = []
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*trail, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*trail, nxt)))
    assert cycles == []


FAMILY = "neurodyn.families.lif_network.engine"


@pytest.mark.parametrize(
    "source",
    [
        "from neurodyn.runner import run_chunked",
        "import neurodyn.runner",
        "def f():\n    from neurodyn.compare import Row\n",
        "from neurodyn import scenario",
        "from neurodyn import run_scenario",
        "from neurodyn.sweep import run_sweep",
        "from neurodyn.cli import main",
        "from neurodyn.registry import get",
        "from neurodyn.families.eqprop import kernels",
        "from ...runner import run_chunked",
        "if TYPE_CHECKING:\n    pass\nelse:\n    from neurodyn.runner import simulate\n",
    ],
)
def test_an_upward_import_in_a_family_is_found(source):
    known = set(all_modules())
    assert len(violations(FAMILY, source, known)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "from neurodyn.stepping import Status, run_chunked",
        "from neurodyn.schema import StrictModel, var_attrs",
        "from neurodyn.rows import Row",
        "from neurodyn.families.base import Family",
        "from neurodyn.families.lif_network import kernels",
        "from . import kernels\nfrom .network import build_network",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from neurodyn.scenario import Scenario\n",
        "import numpy as np\nimport numba",
    ],
)
def test_a_family_may_import_the_leaves_and_itself(source):
    known = set(all_modules())
    assert violations(FAMILY, source, known) == []


def test_leaves_and_core_modules_are_held_to_their_rules():
    known = set(all_modules())
    assert violations("neurodyn.stepping", "from neurodyn.runner import simulate", known) != []
    assert violations("neurodyn.storage", "from neurodyn import __version__, registry", known) == []
    assert violations("neurodyn.runner", "from neurodyn.families.lif_network import engine", known) != []
    assert violations("neurodyn.runner", "from neurodyn import registry, stepping", known) == []
