"""Module structure of certlab.verification: no import cycles (also no lazy in-function imports
that hide one), and the names moved between modules stay importable where they were."""

from __future__ import annotations

import ast
from pathlib import Path

import certlab.verification as verification

PACKAGE = Path(verification.__file__).parent


def _imports(path: Path) -> set[str]:
    """certlab.verification modules imported anywhere in ``path`` (top level or inside
    functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("certlab.verification."):
                found.add(node.module.split(".")[2])
            elif node.module == "certlab.verification":
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("certlab.verification."):
                    found.add(alias.name.split(".")[2])
    return found


def test_no_import_cycles():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & set(modules) - {name} for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join(stack + [node, nxt])}"
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    # the two cycles of the earlier layout are gone
    assert "verify" not in graph["bab"] and "grafted" not in graph["lirpa_patches"]
    assert "lirpa" not in graph["grafted"]


def test_moved_names_stay_importable():
    from certlab.verification import (ExactResult, apply_compatibility_patches, auto_LiRPA,
                                      exact_min_margins, linearize_model, quiet)
    from certlab.verification.exact_milp import exact_min_margins as from_milp
    from certlab.verification.lirpa import apply_compatibility_patches as from_lirpa
    from certlab.verification.lirpa_patches import apply_compatibility_patches as from_patches
    from certlab.verification.verify import ExactResult as from_verify
    from certlab.verification.verify import exact_min_margins as old_path

    assert from_milp is exact_min_margins is old_path
    assert from_lirpa is from_patches is apply_compatibility_patches
    assert from_verify is ExactResult
    assert callable(linearize_model) and callable(quiet) and auto_LiRPA.__name__ == "auto_LiRPA"
