"""``python -m vae_novelty.config``: the command line, the top layer of the config package.

``--markdown`` prints the generated config reference (:mod:`vae_novelty.config.doc`);
``check FILE...`` reports each file's problems with their lines
(:mod:`vae_novelty.config.check`).
"""

from __future__ import annotations

import argparse

from .check import check_files
from .doc import REGENERATE, config_reference_markdown


def main(argv: list[str] | None = None) -> int:
    """``--markdown``: print config/README.md; ``check FILE...``: report each file's problems."""
    parser = argparse.ArgumentParser(
        prog="python -m vae_novelty.config",
        description="The config reference, from the schema; config files checked against it.",
    )
    parser.add_argument(
        "--markdown", action="store_true", help=f"print config/README.md (regenerate: {REGENERATE})"
    )
    commands = parser.add_subparsers(dest="command", metavar="check")
    check = commands.add_parser(
        "check",
        help="check config files: YAML syntax, then the schema and cross-key rules "
        "as the workflow applies them; one FILE:LINE:COL: problem line each",
    )
    check.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="a config file, checked on its own as the only --configfile",
    )
    args = parser.parse_args(argv)
    if args.markdown == (args.command == "check"):
        parser.error("give either --markdown or check FILE...")
    if args.command == "check":
        return check_files(args.files)
    print(config_reference_markdown(), end="")
    return 0
