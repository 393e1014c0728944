"""``python -m vae_novelty.config check FILE...``: a config file's problems, each with its line.

Snakemake reads ``--configfile`` files itself, before the Snakefile runs, and reports a YAML
syntax error without the file or the line ("Config file is not valid JSON or YAML"). This
check names both (``FILE:LINE:COL: problem``), then validates the file as the workflow does
(merged over the schema's defaults, :func:`vae_novelty.config.validate.checked_config`) and reports each
problem with its key path and the line of that key in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from .validate import checked_config


class ConfigFileError(ValueError):
    """A config file that cannot be read as YAML; the message names the file (and the line)."""


def _position(path: str | Path, mark: yaml.Mark | None) -> str:
    """``FILE:LINE:COL`` for a mark (PyYAML counts from 0, editors from 1); ``FILE`` for none."""
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)


def syntax_message(path: str | Path, error: yaml.YAMLError) -> str:
    """``FILE:LINE:COL: problem (context at line N)`` for a YAML error of ``path``."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return f"{path}: {error}"
    mark = error.problem_mark or error.context_mark
    context = (
        f" ({error.context} at line {error.context_mark.line + 1})"
        if (error.context and error.context_mark and error.context_mark is not mark)
        else ""
    )
    return f"{_position(path, mark)}: {error.problem or error.context}{context}"


def _parse(text: str) -> tuple[Any, yaml.Node | None]:
    """The data of one YAML document and its node tree (which keeps every key's position)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return (None if node is None else loader.construct_document(node)), node
    finally:
        loader.dispose()


def read_config_file(path: str | Path) -> tuple[Any, yaml.Node | None]:
    """A config file's data and node tree; :class:`ConfigFileError` where it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path}: cannot be read ({exc})") from None
    try:
        return _parse(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError(syntax_message(path, exc)) from None


def _child(node: yaml.Node, key: Any) -> tuple[yaml.Mark, yaml.Node] | None:
    """Where ``key`` is written below ``node`` (a mapping key or a list position), and its
    value's node; None where the file does not spell it out. A repeated key: the last wins."""
    if isinstance(node, yaml.MappingNode):
        hits = [
            (k.start_mark, v)
            for k, v in node.value
            if isinstance(k, yaml.ScalarNode) and k.value == str(key)
        ]
        return hits[-1] if hits else None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key].start_mark, node.value[key]
    return None


def key_mark(root: yaml.Node | None, path: Iterable[Any]) -> yaml.Mark | None:
    """The position of the key at ``path`` in the file, or of its deepest ancestor the file
    writes (a key filled in from the defaults points to its section); None for neither."""
    mark, node = None, root
    for key in path:
        found = _child(node, key) if node is not None else None
        if found is None:
            break
        mark, node = found
    return mark


def file_problems(path: str | Path) -> list[str]:
    """Every problem of one config file, one ``FILE:LINE:COL: message`` line each, in the
    file's order (problems with no line in the file first)."""
    try:
        data, root = read_config_file(path)
    except ConfigFileError as exc:
        return [str(exc)]
    if not isinstance(data, dict):
        return [f"{path}: a config file must be a mapping of keys at the top level"]
    _, problems = checked_config(data)
    marked = sorted(
        ((key_mark(root, p.path), p.message) for p in problems),
        key=lambda hit: hit[0].index if hit[0] else -1,
    )
    return [f"{_position(path, mark)}: {message}" for mark, message in marked]


def check_files(paths: Iterable[str | Path]) -> int:
    """Print each file's problems (``FILE: ok`` for a clean one); 0 when all are clean, else 1."""
    clean = True
    for path in paths:
        problems = file_problems(path)
        print("\n".join(problems) if problems else f"{path}: ok")
        clean = clean and not problems
    return 0 if clean else 1
