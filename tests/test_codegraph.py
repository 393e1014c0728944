"""The package's import graph: no cycles, layers that import downward only, and each stage's
code digest covering exactly the modules its script can import."""

from __future__ import annotations

import functools
import itertools
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from vae_novelty import codegraph
from vae_novelty.codegraph import closure, code_digest, cycles, import_graph, module_files

SCRIPTS = REPO / "workflow" / "scripts"
PKG = REPO / "src" / "vae_novelty"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _reference_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles by brute force: u and v are in one cycle when each reaches the other."""
    nodes = sorted(graph)
    reach = {u: set(graph[u]) for u in nodes}
    changed = True
    while changed:  # transitive closure, naively
        changed = False
        for u in nodes:
            new = set().union(*(reach.get(v, set()) for v in reach[u])) - reach[u]
            if new:
                reach[u] |= new
                changed = True
    groups = {
        frozenset([u] + [v for v in nodes if v in reach[u] and u in reach.get(v, ())])
        for u in nodes
    }
    return sorted(sorted(g) for g in groups if len(g) > 1)


# ------------------------------------------------------------------------- the guard


def test_the_package_has_no_import_cycle():
    """Imports inside functions count: they hide a cycle from a reader, not from the design."""
    found = cycles(import_graph(PKG))
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_config_package_imports_downward_only():
    """schema at the bottom; overrides, problems, grid and validate above it; doc, check and
    cli on top; nothing outside the top layer imports the top layer."""
    graph = import_graph(PKG)
    c = "vae_novelty.config."
    assert {m for m in graph[c + "schema"] if m.startswith(c)} == set()
    assert {m for m in graph[c + "grid"] if m.startswith("vae_novelty.")} == set()
    assert {m for m in graph[c + "overrides"] if m.startswith(c)} <= {c + "schema"}
    assert {m for m in graph[c + "problems"] if m.startswith(c)} <= {c + "schema"}
    assert {m for m in graph[c + "validate"] if m.startswith(c)} <= {
        c + "schema",
        c + "grid",
        c + "overrides",
        c + "problems",
    }
    top = {c + "doc", c + "check", c + "cli", c + "__main__"}
    importers = {m for m, targets in graph.items() if targets & top}
    assert importers <= top, importers


# The package's layers, bottom first, derived from its import graph (imports inside functions
# included). A module imports only modules of its own layer or of layers below it; a new
# module must be placed here (the test names an unplaced one).
LAYERS = [
    # files, devices, logging, plain values and statistics: they import no other layer
    (
        "foundations",
        {
            "vae_novelty",
            "io",
            "tensors",
            "hyperparams",
            "recorded",
            "seeds",
            "ct",
            "codegraph",
            "results_lock",
        },
    ),
    # what every computation reads and writes: the MNIST arrays, the splits, the per-model file
    # format, the VAE and its snapshots
    (
        "data and model files",
        {"data", "splits", "size_splits", "artefacts", "model", "stacked", "snapshots"},
    ),
    # the schema, validation and the model grid; validation checks the size sweep against the
    # splits (size_splits), so it sits above the data
    (
        "configuration",
        {
            "config",
            "config.schema",
            "config.overrides",
            "config.grid",
            "config.problems",
            "config.validate",
        },
    ),
    # the numerical engines and the trainers: arrays and models in, numbers out, unaware of
    # stages and configuration
    (
        "engines",
        {
            "chunks",
            "theorem1",
            "neighbours",
            "pixel_nn",
            "agreement",
            "decoder",
            "posterior",
            "classifier",
            "train",
            "ensemble",
        },
    ),
    # one workflow stage each (and the run record): plain values from the scripts, files in
    # and out, the engines called
    (
        "stages",
        {
            "theorem1_table",
            "elbo",
            "evaluate",
            "samples",
            "samples_table",
            "training_jobs",
            "size_train",
            "size_eval",
            "size_table",
            "tables",
            "table_checks",
            "run_record",
            "jobs",
        },
    ),
    # the figures, drawn from the stages' files
    (
        "figures",
        {
            "figures",
            "figures.naming",
            "figures.plan",
            "figures.common",
            "figures.selection",
            "figures.summary",
            "figures.loaders",
            "figures.figure1",
            "figures.figure2",
            "figures.figure3",
            "figures.figure14",
            "figures.figure15",
            "figures.sweep",
            "figures.quant",
            "figures.size",
            "figures.build",
        },
    ),
    # command lines and the generated reference: nothing in the package imports them
    ("entry points", {"config.doc", "config.check", "config.cli", "config.__main__", "compare"}),
]


def layer_of() -> dict[str, int]:
    """{module: index of its layer in LAYERS} (full module names)."""
    out = {}
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            out["vae_novelty" if name == "vae_novelty" else f"vae_novelty.{name}"] = i
    return out


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Every import of ``graph`` that runs from a layer up to a higher one, as text."""
    return [
        f"{m} ({LAYERS[layers[m]][0]}) imports {t} ({LAYERS[layers[t]][0]})"
        for m in sorted(graph)
        for t in sorted(graph[m])
        if m in layers and t in layers and layers[t] > layers[m]
    ]


def test_every_module_has_a_layer():
    layers = layer_of()
    modules = set(import_graph(PKG))
    assert modules - set(layers) == set(), "place these modules in LAYERS"
    assert set(layers) - modules == set(), "LAYERS names modules that do not exist"
    assert sum(len(names) for _, names in LAYERS) == len(layers)  # each module once


def test_imports_never_run_up_a_layer():
    found = upward_imports(import_graph(PKG), layer_of())
    assert found == [], "imports running up a layer:\n" + "\n".join(found)


def test_an_upward_import_is_reported():
    layers = layer_of()
    graph = {
        "vae_novelty.io": {"vae_novelty.tables"},
        "vae_novelty.tables": {"vae_novelty.io"},
        "vae_novelty.theorem1": {"vae_novelty.chunks"},
    }
    assert upward_imports(graph, layers) == [
        "vae_novelty.io (foundations) imports vae_novelty.tables (stages)"
    ]


def test_cycles_are_found_through_imports_inside_functions(tmp_path):
    pkg = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "a.py": "from .b import f\n",
            "b.py": "def f():\n    from . import a\n",
            "c.py": "import pkg.a\n",
            "sub/__init__.py": "",
            "sub/d.py": "from ..c import x\n",
            "sub/e.py": "def g():\n    from .d import y\n",
            "sub/f.py": "from ..sub import e\n",
        },
    )
    graph = import_graph(pkg)
    assert graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.sub.d"] == {"pkg.c"}
    assert graph["pkg.sub.e"] == {"pkg.sub.d"}
    assert graph["pkg.sub.f"] == {"pkg.sub", "pkg.sub.e"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
    (pkg / "c.py").write_text("def h():\n    from .sub.f import z\n")
    (pkg / "sub" / "d.py").write_text("from ..c import x\nfrom .f import w\n")
    # d -> f -> e -> d, and c -> f (inside a function) -> e -> d -> c
    assert cycles(import_graph(pkg)) == [
        ["pkg.a", "pkg.b"],
        ["pkg.c", "pkg.sub.d", "pkg.sub.e", "pkg.sub.f"],
    ]


@pytest.mark.parametrize("seed", range(30))
def test_cycles_equal_the_brute_force_reference(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 12)
    nodes = [f"m{i}" for i in range(n)]
    p = rng.choice([0.05, 0.15, 0.3])
    graph = {u: {v for v in nodes if v != u and rng.random() < p} for u in nodes}
    assert cycles(graph) == _reference_cycles(graph)


def test_a_self_import_and_a_dag_are_no_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


# ------------------------------------------------------------------------- stage digests


def test_closure_follows_the_package_and_its_parent_packages(tmp_path):
    pkg = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "a.py": "import json\nfrom .b import f\n",
            "b.py": "def f():\n    from .sub import d\n",
            "c.py": "",
            "sub/__init__.py": "",
            "sub/d.py": "",
            "sub/e.py": "",
        },
    )
    script = _write(tmp_path, {"s.py": "import os\nfrom pkg.a import g\n"}) / "s.py"
    got = [p.relative_to(pkg).as_posix() for p in closure(script, pkg)]
    assert got == ["__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/d.py"]


# Scripts whose real imports are probed (one interpreter each, cached: importing torch is slow).
PROBED = ("prepare_mnist.py", "train.py", "evaluate.py", "tables.py", "figure1.py", "run_record.py")


@functools.lru_cache(maxsize=None)
def _loaded_at_import(script: Path) -> frozenset[Path]:
    """The package files a rule script loads when its top-level imports run (run for real in
    a fresh interpreter, the snakemake object not needed): a lower bound of its closure."""
    import ast

    tree = ast.parse(script.read_text())
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    code = "\n".join(ast.unparse(n) for n in imports)
    probe = (
        f"import sys; sys.path[:0] = [{str(SCRIPTS)!r}, {str(REPO / 'src')!r}]\n{code}\n"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items() "
        "if n.split('.')[0] == 'vae_novelty'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    return frozenset(Path(line).resolve() for line in out.split())


@pytest.mark.parametrize("script", PROBED)
def test_a_stage_digest_covers_every_module_its_script_loads(script):
    path = SCRIPTS / script
    loaded = _loaded_at_import(path)
    assert loaded, "the probe loaded nothing"
    assert loaded <= set(closure(path, PKG)), loaded - set(closure(path, PKG))


def _stage_digests(pkg: Path, base: Path) -> dict[str, str]:
    return {
        s.name: code_digest(closure(s, pkg), base)
        for s in sorted(SCRIPTS.glob("*.py"))
        if s.name != "_bootstrap.py"
    }


@pytest.mark.parametrize(
    "edited", ["io.py", "config/validate.py", "config/schema.py", "theorem1.py", "model.py"]
)
def test_editing_a_module_changes_exactly_the_digests_of_the_stages_that_import_it(
    tmp_path, edited
):
    """A copy of the package with one module edited: the stages whose digest changes are
    those whose import closure holds it; that includes every probed stage whose script loads
    it when imported (a real import, not the graph). io.py and config/ are loaded at import
    by each stage that reaches them, so for them the two sets are equal; theorem1.py and
    model.py also reach figure1.py and tables.py through imports inside functions, which
    an import-time probe cannot see."""
    import shutil

    copy = tmp_path / "src" / "vae_novelty"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = _stage_digests(copy, tmp_path)
    with open(copy / edited, "a") as fh:
        fh.write("\n# edited\n")
    after = _stage_digests(copy, tmp_path)
    changed = {s for s in before if before[s] != after[s]}
    importers = {s for s in PROBED if (PKG / edited).resolve() in _loaded_at_import(SCRIPTS / s)}
    assert importers  # every module edited here is used by some probed stage
    if edited in ("io.py", "config/validate.py", "config/schema.py"):
        assert changed & set(PROBED) == importers
    else:
        assert importers < changed & set(PROBED)
    assert changed == {
        s
        for s in before
        if any(p.relative_to(PKG).as_posix() == edited for p in closure(SCRIPTS / s, PKG))
    }


def test_io_and_config_reach_the_stages_they_should():
    """io.py is under every stage (all log through it); config/ under those that build model
    ids or read the schema, not under the data stage."""
    digests = {
        s.name: {p.relative_to(PKG).as_posix() for p in closure(s, PKG)}
        for s in SCRIPTS.glob("*.py")
        if s.name != "_bootstrap.py"
    }
    assert all("io.py" in files for files in digests.values())
    for stage in ("train.py", "evaluate.py", "tables.py", "run_record.py"):
        assert "config/validate.py" in digests[stage], stage
    assert "config/validate.py" not in digests["prepare_mnist.py"]


def test_code_digest_names_and_contents(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("x = 1\n")
    assert code_digest([a], tmp_path) != code_digest([b], tmp_path)  # the name counts
    first = code_digest([a, b], tmp_path)
    b.write_text("x = 2\n")
    assert code_digest([a, b], tmp_path) != first
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in (a, b):
        (moved / f.name).write_bytes(f.read_bytes())
    assert code_digest([moved / "a.py", moved / "b.py"], moved) == code_digest([a, b], tmp_path)


def test_module_files_names_packages_by_their_init():
    mods = module_files(PKG)
    assert mods["vae_novelty.config"] == PKG / "config" / "__init__.py"
    assert mods["vae_novelty.config.schema"] == PKG / "config" / "schema.py"
    assert all(p.suffix == ".py" for p in mods.values())
    assert list(itertools.islice(mods, 1))  # not empty
    assert codegraph.PACKAGE_ROOT == PKG.resolve()
