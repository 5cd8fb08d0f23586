"""The layout is the architecture: the layers contract holds, the import graph has no cycle, and the import
paths the README and docs give plug-in authors keep working."""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_the_layers_contract_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The contracts are in pyproject.toml ([tool.importlinter]); lint-imports reads it from the project root.
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="a")
    graph.add_import(importer="b", imported="c")
    assert _cycles(graph) == [["a", "b"]]


def test_the_import_graph_has_no_cycle() -> None:
    # Every import counts, those inside functions too (grimp reads them all).
    assert _cycles(grimp.build_graph("masssim")) == []


def _documented_imports() -> list[str]:
    texts = [(ROOT / "README.md").read_text(encoding="utf-8"), (ROOT / "docs" / "model.md").read_text(encoding="utf-8")]
    found = set()
    for text in texts:
        found.update(re.findall(r"^from masssim[\w.]* import [\w, ]+$", text, flags=re.M))
        found.update(re.findall(r"^import masssim[\w.]*$", text, flags=re.M))
    return sorted(found)


def test_the_docs_show_plugin_imports() -> None:
    assert any("masssim.policies.base" in line for line in _documented_imports())


@pytest.mark.parametrize("statement", _documented_imports())
def test_every_documented_import_works(statement: str) -> None:
    exec(statement, {})
