"""The layers of docs/architecture.md, held against the code: imports flow one way, there is
no import cycle in `restores/`, and no app module grows past 400 lines.

Every import counts, at module level or inside a function, so a cycle cannot hide behind a
late import."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "restores"
MAX_LINES = 400

BUILDERS = ("restores.platforms.manifests", "restores.platforms.pgbackrest",
            "restores.platforms.restore_options")
# What the builders may use: the vocabulary below them, and each other.
BELOW_BUILDERS = ("restores.platforms.errors", "restores.platforms.facts",
                  "restores.platforms.targets", "restores.platforms.secrets", *BUILDERS)
ADAPTERS = ("restores.platforms.local", "restores.platforms.kubernetes")
UPPER = ("restores.views", "restores.forms", "restores.selectors", "restores.templatetags",
         "restores.urls", "restores.admin")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules() -> dict[str, Path]:
    return {module_name(p): p for p in APP.rglob("*.py") if "migrations" not in p.parts}


def imports_of(path: Path, name: str, known: Iterable[str]) -> set[str]:
    """Every module `path` imports (restores modules resolved to the deepest one that exists;
    others by their top-level name)."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {m if m.startswith("restores") else m.split(".")[0] for m in found} - {name}


def graph() -> dict[str, set[str]]:
    modules = app_modules()
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), or of a module
    importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in edges:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def under(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def breaches(importers: Iterable[str], forbidden: Iterable[str]) -> list[tuple[str, str]]:
    edges = graph()
    return sorted((m, dep) for m, deps in edges.items() if under(m, importers)
                  for dep in deps if under(dep, forbidden))


def test_the_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_relative_function_level_and_package_imports() -> None:
    edges = graph()
    assert "restores.platforms.errors" in edges["restores.platforms.manifests.specs"]  # ..errors
    assert "restores.services.dispatch" in edges["restores.services.operations"]
    assert "restores.platforms" in edges["restores.steps.loop"]  # from restores import platforms


def test_there_is_no_import_cycle_in_the_app() -> None:
    assert cycles(graph()) == []


def test_views_import_neither_tasks_nor_platforms() -> None:
    assert breaches(["restores.views"], ["restores.tasks", "restores.platforms"]) == []


def test_builders_import_only_the_vocabulary_below_them() -> None:
    edges = graph()
    wrong = sorted((m, dep) for m, deps in edges.items() if under(m, BUILDERS)
                   for dep in deps if dep.startswith("restores") and not under(dep, BELOW_BUILDERS))
    assert wrong == []
    assert breaches(BUILDERS, ["django", "kubernetes", "subprocess"]) == []


def test_the_platforms_know_nothing_of_the_django_app() -> None:
    app = ["restores.models", "restores.services", "restores.steps", "restores.tasks",
           "restores.inventory", "restores.rules", *UPPER]
    assert breaches(["restores.platforms"], app) == []


def test_services_reach_no_step_task_page_or_adapter() -> None:
    assert breaches(["restores.services"], ["restores.steps", "restores.tasks", *UPPER,
                                            *ADAPTERS]) == []


def test_steps_never_call_back_into_services_or_pages() -> None:
    assert breaches(["restores.steps"], ["restores.services", "restores.tasks", *UPPER,
                                         *ADAPTERS]) == []


def test_models_sit_below_everything_but_the_platforms_vocabulary() -> None:
    assert breaches(["restores.models"], ["restores.services", "restores.steps",
                                          "restores.tasks", "restores.inventory", *UPPER,
                                          *ADAPTERS]) == []


def test_only_the_platforms_run_processes_or_talk_to_kubernetes() -> None:
    wrong = sorted((m, dep) for m, deps in graph().items() if not under(m, ["restores.platforms"])
                   for dep in deps if dep in ("kubernetes", "subprocess"))
    assert wrong == []


@pytest.mark.parametrize("path", sorted(app_modules().values()),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_app_module_is_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES
