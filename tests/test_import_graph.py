"""The package's import graph: no circle, and every import inside a function says why.

Read from the source with ``ast`` (nothing is imported): an edge is any import of one of
our modules, at module level or inside a function, so a circle hidden by a function-local
import is found too. A function-local import is kept only for an optional dependency or
start-up time (``neumod --help`` without torch), and carries a comment saying which.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "avalanche_neumod"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _targets(module: str, path: Path, node: ast.AST, known: dict) -> set[str]:
    """Our modules that the import ``node`` of ``module`` loads."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else [])
        base_name = ".".join(base)
    else:
        base_name = node.module or ""
    out = set()
    for a in node.names:
        sub = f"{base_name}.{a.name}"
        out.add(sub if sub in known else base_name)
    return {m for m in out if m in known}


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (anywhere in its source)."""
    mods = _modules()
    graph = {}
    for m, p in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _targets(m, p, node, mods)
        graph[m] = deps - {m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert "avalanche_neumod.experiment.tuning" in graph["avalanche_neumod.experiment.launch"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_hidden_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_tuning_plans_and_never_calls_the_launcher():
    graph = import_graph()
    exp = "avalanche_neumod.experiment."
    assert exp + "launch" not in graph[exp + "tuning"]
    assert exp + "tuning" not in graph[exp + "suite"]


def _local_imports(tree: ast.AST) -> list[ast.AST]:
    """Imports inside a function body (module-level and class-level ones are at the top)."""
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    out.append(node)
    return out


def test_every_function_local_import_says_why():
    """A comment on the import's lines, or above the block of imports it belongs to."""
    missing = []
    for p in _modules().values():
        lines = p.read_text(encoding="utf-8").splitlines()
        nodes = _local_imports(ast.parse("\n".join(lines)))
        covered = {i for n in nodes for i in range(n.lineno, n.end_lineno + 1)}
        for node in nodes:
            if any("#" in s for s in lines[node.lineno - 1 : node.end_lineno]):
                continue
            i = node.lineno - 1  # 1-based number of the line above
            while i > 0 and (i in covered or not lines[i - 1].strip()):
                i -= 1
            if not (i > 0 and lines[i - 1].strip().startswith("#")):
                missing.append(f"{p.relative_to(PKG.parent)}:{node.lineno}")
    assert missing == [], "function-local imports without a comment saying why: " + ", ".join(
        missing
    )
