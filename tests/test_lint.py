"""`snakemake --lint` must find nothing, for the full and for the tiny configuration.

Snakemake 9 exits 1 when it reports lints and 0 when it prints "Congratulations"; the output
is checked too ("Lints for ..." blocks), in case a lint ever comes without the exit status.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, TINY

pytestmark = pytest.mark.slow


def lint(workdir, *args, snakefile=REPO / "Snakefile"):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--lint",
            "-s",
            str(snakefile),
            "--directory",
            str(workdir),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "configfile",
    [REPO / "config" / "config.yaml", TINY, REPO / "config" / "size-sweep.yaml"],
    ids=["config.yaml", "tiny.yaml", "size-sweep.yaml"],
)
def test_workflow_is_lint_clean(tmp_path, configfile):
    # --directory keeps Snakemake's lint log out of the repository; config/config.yaml is what
    # a plain `snakemake --lint` in the repository reads.
    rc, out = lint(tmp_path, "--configfile", str(configfile))
    assert rc == 0 and "Lints for" not in out, f"snakemake --lint (exit {rc}):\n{out}"
    assert "Congratulations, your workflow is in a good condition!" in out


def test_lint_failures_are_detected(tmp_path):
    # The check above relies on the exit status: a workflow with lints must fail it.
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text('rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n')
    rc, out = lint(tmp_path / "work", snakefile=snakefile)
    assert rc == 1
    assert "Lints for rule a" in out and "No log directive defined" in out


def test_parsing_the_workflow_imports_no_heavy_library():
    """The Snakefile's own imports (config, naming helpers) pull in neither torch nor
    matplotlib: parsing (every snakemake call, every submitted cluster job) stays fast."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'src'); "
        "import vae_novelty.config, vae_novelty.figures.naming; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_rule_scripts_import_this_checkout_even_with_another_copy_installed(tmp_path):
    """Snakemake appends the workflow's search paths after site-packages in a script's
    preamble: _bootstrap must still put this repository's src/ first."""
    import subprocess
    import sys

    shadow = tmp_path / "site" / "vae_novelty"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("SHADOW = True\n")
    src = REPO / "src"
    code = (
        f"import sys; sys.path[:0] = [{str(tmp_path / 'site')!r}]; "
        f"sys.path.append({str(src)!r}); sys.path.append({str(REPO / 'workflow/scripts')!r}); "
        "import _bootstrap, vae_novelty; print(vae_novelty.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out.startswith(str(src)), out
