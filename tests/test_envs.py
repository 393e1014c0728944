"""Conda environments: pinned like requirements.txt, and enough for the rules that use them.

`snakemake --use-conda` cannot run in CI (no conda, no channel access), so these checks are
static: every version pinned in envs/*.yaml equals requirements.txt, every rule has `log:` and
`conda:`, and every third-party module a rule's script can import -- directly or through the
vae_novelty modules it imports, transitively -- is a package of that rule's environment.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY

TINY_SIZE = REPO / "tests" / "configs" / "tiny-size.yaml"  # the size sweep's rules
from workflow_info import workflow_rules

ENVS = sorted((REPO / "envs").glob("*.yaml"))
# Where `import x` finds project code: the rule scripts' folder (snakemake puts a script's
# folder on sys.path) and src/ (added by workflow/scripts/_bootstrap.py).
LOCAL_ROOTS = (REPO / "workflow" / "scripts", REPO / "src")
# Import name -> distribution name, where they differ.
IMPORT_TO_PACKAGE = {"yaml": "pyyaml", "PIL": "pillow", "sklearn": "scikit-learn"}
# Conda package name -> PyPI name, where they differ.
CONDA_TO_PYPI = {"pytorch": "torch"}
# Provided to every rule by Snakemake itself (the script preamble imports it from the
# Snakemake installation running the workflow).
PROVIDED = {"snakemake", "__future__"}
UNPINNED_OK = {"pip"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_requirements() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        assert m, f"requirements.txt: {line!r} is not pinned as name==version"
        pins[normalize(m.group(1))] = m.group(2)
    return pins


def read_env(path: Path) -> dict[str, str | None]:
    """Package -> pinned version (None: unpinned) of a conda env file, conda and pip parts."""
    spec = yaml.safe_load(path.read_text())
    packages: dict[str, str | None] = {}
    for dep in spec.get("dependencies", []):
        if isinstance(dep, dict):
            for pip_dep in dep.get("pip", []):
                m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:==\s*(\S+))?", pip_dep.strip())
                assert m, f"{path.name}: cannot read pip dependency {pip_dep!r}"
                packages[normalize(m.group(1))] = m.group(2)
            continue
        m = re.fullmatch(r"(?:[\w\-]+::)?([A-Za-z0-9_.\-]+)\s*(?:==?\s*([^\s=]+))?", dep.strip())
        assert m, f"{path.name}: cannot read conda dependency {dep!r}"
        name = normalize(CONDA_TO_PYPI.get(m.group(1), m.group(1)))
        packages[name] = m.group(2)
    return packages


# ----------------------------------------------------------------------------- import scan


def _is_import_error_guard(handler: ast.ExceptHandler) -> bool:
    names = []
    if isinstance(handler.type, ast.Name):
        names = [handler.type.id]
    elif isinstance(handler.type, ast.Tuple):
        names = [e.id for e in handler.type.elts if isinstance(e, ast.Name)]
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))


class _Imports(ast.NodeVisitor):
    """Absolute module names a file imports; optional imports (inside ``try:`` with an
    ``except ImportError``) and ``if TYPE_CHECKING:`` blocks are left out. Imports inside
    functions count: the code can reach them."""

    def __init__(self, package: str):
        self.package = package  # package of the file, for relative imports
        self.found: set[str] = set()

    def visit_Try(self, node: ast.Try) -> None:
        if any(_is_import_error_guard(h) for h in node.handlers):
            for child in node.handlers + node.orelse + node.finalbody:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".") if self.package else []
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        self.found.add(base)
        # `from pkg import name`: name may be a submodule.
        self.found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def local_module_file(module: str) -> Path | None:
    """The project file of ``module`` (a module or a package's __init__.py), or None."""
    rel = Path(*module.split("."))
    for root in LOCAL_ROOTS:
        for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def is_local(module: str) -> bool:
    return local_module_file(module.split(".")[0]) is not None


def third_party_imports(script: Path) -> dict[str, set[str]]:
    """Top-level third-party module -> the project files importing it, for ``script`` and
    every project module it imports, transitively."""
    result: dict[str, set[str]] = {}
    seen: set[Path] = set()
    todo: list[tuple[Path, str]] = [(script, "")]
    while todo:
        path, module_name = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        package = module_name if path.name == "__init__.py" else module_name.rpartition(".")[0]
        visitor = _Imports(package)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        for module in visitor.found:
            top = module.split(".")[0]
            if not top or top in PROVIDED or top in sys.stdlib_module_names:
                continue
            if is_local(module):
                # The module and the packages above it run on import.
                parts = module.split(".")
                for i in range(1, len(parts) + 1):
                    name = ".".join(parts[:i])
                    file = local_module_file(name)
                    if file is not None:
                        todo.append((file, name))
                continue
            result.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return result


# ----------------------------------------------------------------------------- tests


def test_there_are_env_files():
    assert {p.name for p in ENVS} >= {"vae.yaml", "figures.yaml"}


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_equal_requirements(env):
    requirements = read_requirements()
    packages = read_env(env)
    assert packages.get("python"), f"{env.name}: python is not pinned"
    problems = []
    for name, version in packages.items():
        if name == "python" or name in UNPINNED_OK:
            continue
        if version is None:
            problems.append(f"{name} is not pinned")
        elif name not in requirements:
            problems.append(f"{name}={version} is not in requirements.txt")
        elif requirements[name] != version:
            problems.append(f"{name}={version} but requirements.txt has {requirements[name]}")
    assert not problems, f"{env.name}: " + "; ".join(problems)


def test_envs_pin_one_python_version():
    versions = {env.name: read_env(env)["python"] for env in ENVS}
    assert len(set(versions.values())) == 1, versions
    # requirements.txt supports Python 3.11 and 3.12; the envs pick one of them.
    assert set(versions.values()) <= {"3.11", "3.12"}, versions


@pytest.mark.parametrize(
    "configfile",
    [REPO / "config" / "config.yaml", TINY, TINY_SIZE],
    ids=["config.yaml", "tiny.yaml", "tiny-size.yaml"],
)
def test_every_rule_has_log_and_conda(configfile):
    problems = []
    for rule in workflow_rules(configfile):
        if rule["norun"]:  # target rules such as `all` run nothing
            continue
        if not rule["log"]:
            problems.append(f"{rule['name']}: no log:")
        if not rule["conda"]:
            problems.append(f"{rule['name']}: no conda:")
        elif not Path(rule["conda"]).is_file():
            problems.append(f"{rule['name']}: conda env {rule['conda']} does not exist")
        elif Path(rule["conda"]).resolve().parent != REPO / "envs":
            problems.append(f"{rule['name']}: conda env {rule['conda']} is not under envs/")
    assert not problems, "\n".join(problems)


def test_every_rule_runs_a_script():
    # The import check below reads scripts; a shell: or run: rule would need its own check.
    others = [r["name"] for r in workflow_rules() if not r["norun"] and not r["script"]]
    assert not others, f"rules without script: (extend test_envs.py to check them): {others}"


@pytest.mark.parametrize(
    "configfile",
    [REPO / "config" / "config.yaml", TINY_SIZE],
    ids=["config.yaml", "tiny-size.yaml"],
)
def test_each_rule_env_provides_what_its_script_imports(configfile):
    problems = []
    checked = 0
    for rule in workflow_rules(configfile):
        if rule["norun"] or not rule["script"] or not rule["conda"]:
            continue
        script = Path(rule["script"])
        if script.suffix != ".py":
            problems.append(f"{rule['name']}: cannot scan {script.name} (not Python)")
            continue
        env = Path(rule["conda"])
        provided = set(read_env(env))
        for module, importers in sorted(third_party_imports(script).items()):
            package = normalize(IMPORT_TO_PACKAGE.get(module, module))
            if package not in provided:
                problems.append(
                    f"rule {rule['name']} ({env.name}): needs {package} "
                    f"(import {module} in {', '.join(sorted(importers))})"
                )
        checked += 1
    assert checked >= 10, f"only {checked} rules were checked"
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- the scanner


def test_scan_follows_project_imports_and_lazy_imports():
    found = third_party_imports(REPO / "workflow" / "scripts" / "train.py")
    # torch: imported by the script and by vae_novelty.train / .model; pandas: only inside a
    # function of vae_novelty.train; jsonschema/yaml: not reachable from train.py.
    assert "torch" in found and "src/vae_novelty/model.py" in found["torch"]
    assert found.get("pandas") == {"src/vae_novelty/train.py"}
    assert "numpy" in found


def test_scan_resolves_relative_imports_and_skips_optional_ones(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "demo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\nfrom . import c\n")
    (pkg / "b.py").write_text("import json\n\ndef f():\n    import scipy.linalg\n")
    (pkg / "c.py").write_text(
        "try:\n    import numba\nexcept ImportError:\n    numba = None\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas\n"
    )
    script = tmp_path / "scripts" / "run.py"
    script.parent.mkdir()
    script.write_text("import demo.a\nimport requests\n")
    monkeypatch.setattr(sys.modules[__name__], "LOCAL_ROOTS", (script.parent, tmp_path / "src"))
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert third_party_imports(script) == {
        "scipy": {"src/demo/b.py"},
        "requests": {"scripts/run.py"},
    }
