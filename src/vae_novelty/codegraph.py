"""The package's import graph, read from the source (nothing is imported).

Every ``import`` and ``from ... import`` counts, those inside functions included: they run when
the function does, so they are part of what a module depends on. Two uses:

- :func:`cycles`: the import cycles among the package's modules (tests/test_codegraph.py
  requires none);
- :func:`closure`: the package files a script can run (its imports, followed through the
  package, with the ``__init__.py`` of every package on the way), which the workflow digests
  into each stage's ``code`` parameter, so that editing a module reruns exactly the stages
  that import it.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


def module_files(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package at ``root``
    (``vae_novelty.config`` -> ``config/__init__.py``)."""
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_names(path: Path, package: str) -> set[str]:
    """Every dotted name the file at ``path`` imports (``package``: the package it is in, for
    relative imports): ``import a.b`` gives ``a.b``; ``from a import b`` gives ``a`` and
    ``a.b`` (``b`` may be a module or a name)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                anchor = base[: len(base) - node.level + 1]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
            out |= {f"{module}.{alias.name}" for alias in node.names}
    return out


def _package_of(name: str, path: Path) -> str:
    """The package relative imports in module ``name`` (file ``path``) are resolved against."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _parents(name: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``: the packages whose ``__init__`` runs on importing it."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    """Module -> the package's modules it imports directly (itself and the package's top-level
    ``__init__`` left out, as every module's import runs that one)."""
    mods = module_files(root)
    top = Path(root).name
    graph = {}
    for name, path in mods.items():
        names = imported_names(path, _package_of(name, path))
        graph[name] = {m for m in names if m in mods and m not in (name, top)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one module (each sorted),
    i.e. its import cycles; ``[]`` when there are none. Tarjan's algorithm, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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
                    found.append(sorted(component))
    return sorted(found)


def closure(script: Path, root: Path = PACKAGE_ROOT) -> list[Path]:
    """The package files a script can run: the modules it imports from the package at
    ``root``, and theirs, transitively, each with its parent packages' ``__init__.py``
    (sorted). ``script`` is any Python file outside the package."""
    mods = module_files(root)
    seen: set[str] = set()
    todo = sorted(imported_names(script, ""))
    while todo:
        name = todo.pop()
        if name not in mods or name in seen:
            continue
        seen.add(name)
        path = mods[name]
        todo += _parents(name)
        todo += sorted(imported_names(path, _package_of(name, path)))
    return sorted(mods[name] for name in seen)


def code_digest(paths, base: Path) -> str:
    """A digest of files' contents and their paths relative to ``base`` (16 hex digits): the
    same for a moved or freshly checked-out copy, different when any byte or name differs."""
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        for part in (path.relative_to(base).as_posix().encode(), b"\0", path.read_bytes()):
            digest.update(part)
    return digest.hexdigest()[:16]
