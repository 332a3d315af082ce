"""No import circle between velapy's modules (issue 21 item 7): every `import`/`from ... import` of
a velapy module, also inside functions and `if TYPE_CHECKING:`, is an edge; the test fails on any
cycle but the one known below. Reads the source only (no import), so it is fast."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "velapy"
# circles outside this work, left to their owners: a package __init__ that imports its submodules
# while they import names from it; the run history and the session (each imports the other's names)
KNOWN = [{"velapy.handoff", "velapy.handoff.argocd", "velapy.handoff.flux"},
         {"velapy.execute.history", "velapy.execute.session"}]


def module_graph(root: Path) -> dict[str, set[str]]:
    mods: dict[str, Path] = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:  # `from velapy.load import redact` names a module
                    target = f"{node.module}.{a.name}"
                    graph[m].add(target if target in mods else node.module)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names)
    return {m: {t for t in targets if t in mods and t != m} for m, targets in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp: set[str] = set()
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.add(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [{"a", "b", "c"}]


def test_no_import_circle_in_velapy() -> None:
    graph = module_graph(PACKAGE)
    # the two circles issue 21 item 7 named are gone
    assert "velapy.compile.render" not in graph["velapy.load.refobjects"]
    assert "velapy.load.yamlio" not in graph["velapy.load.redact"]
    assert [c for c in cycles(graph) if c not in KNOWN] == []
