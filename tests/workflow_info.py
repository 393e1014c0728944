"""What the tests need to know about the workflow's rules, read from Snakemake itself.

:func:`workflow_rules` parses the Snakefile with Snakemake's API in a child process (the
Snakefile changes ``sys.path`` and the working directory) and returns, for every rule, the
directives these tests check. Dynamic rules (``rule: name: f"figure{n}"``) and
``use rule ... with:`` inherit correctly, which a text scan of the .smk files would miss.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import REPO

_CHILD = r"""
import json, sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, OutputSettings, ResourceSettings,
                                      StorageSettings)

snakefile, configfile, workdir, out = sys.argv[1:5]
with SnakemakeApi(OutputSettings()) as api:
    workflow_api = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[Path(configfile)]),
        storage_settings=StorageSettings(), snakefile=Path(snakefile), workdir=Path(workdir))
    # The parsed workflow: a private attribute of snakemake 9's WorkflowApi (pinned in
    # requirements.txt); the public API only prints rule lists.
    workflow = workflow_api._workflow
    rules = []
    for rule in workflow.rules:
        base = Path(str(rule.basedir))
        rules.append({
            "name": rule.name,
            "snakefile": str(rule.snakefile),
            "conda": str(base / rule.conda_env) if rule.conda_env else None,
            "script": str(base / rule.script) if rule.script else None,
            "shell": rule.shellcmd,
            "norun": bool(rule.norun),
            "log": [str(f) for f in rule.log],
            "resources": sorted(k for k in rule.resources if not k.startswith("_")),
        })
Path(out).write_text(json.dumps(rules))
"""


@functools.cache
def workflow_rules(configfile: Path = REPO / "config" / "config.yaml") -> tuple[dict, ...]:
    """Every rule of the workflow under ``configfile``, as dicts (see ``_CHILD``)."""
    with tempfile.TemporaryDirectory(prefix="rules-") as tmp:
        out = Path(tmp) / "rules.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(REPO / "Snakefile"),
                str(configfile),
                str(Path(tmp) / "work"),
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"cannot parse the workflow:\n{proc.stdout}\n{proc.stderr}")
        return tuple(json.loads(out.read_text()))
