"""Architecture checks: layered imports, no import cycles, no oversized source modules.

The layers and the other import contracts are written in ``.importlinter`` at the repository root
and checked with import-linter; this file adds what import-linter does not see: cycles between
single modules (also inside one subpackage) and the size of each module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "napari_segany"
CONTRACTS = ROOT / ".importlinter"
MAX_LINES = 500


def test_import_contracts_are_kept():
    """Lower layers never import higher ones, the core never imports Qt/napari, no cycles."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            str(CONTRACTS),
            "--no-cache",
            "--no-logo",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode != 0:
        pytest.fail(
            f"import contracts broken ({CONTRACTS.name}):\n{run.stdout}{run.stderr}", pytrace=False
        )


def _strongly_connected_components(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def test_no_import_cycles_between_modules():
    """No module reaches itself through imports (function-level imports count too)."""
    graph = grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)
    edges = {
        m: set(graph.find_modules_directly_imported_by(m)) & graph.modules for m in graph.modules
    }
    report = []
    for component in _strongly_connected_components(edges):
        report.append("import cycle among " + ", ".join(component) + ":")
        members = set(component)
        for importer in component:
            for imported in sorted(edges[importer] & members):
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    report.append(
                        f"  {importer} -> {imported} "
                        f"(l.{detail['line_number']}: {detail['line_contents']})"
                    )
    if report:
        pytest.fail("\n".join(report), pytrace=False)


def test_no_source_module_is_longer_than_the_limit():
    offenders = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        with path.open(encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            offenders.append(f"  {path.relative_to(ROOT)}: {n} lines")
    if offenders:
        pytest.fail(f"modules over {MAX_LINES} lines:\n" + "\n".join(offenders), pytrace=False)
