"""MCP resources: the knowledge docs (``knowledge/*.md``) and the rule catalogues.

A catalogue's text is exactly what its CLI prints with ``--format json`` (the command is run,
nothing is restated here). The knowledge folder is found next to the ``toolkit`` package (a
checkout or an editable install) or under ``$CLAUDE_PLUGIN_ROOT``; without either there are no
knowledge resources.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

KNOWLEDGE_PREFIX = "labcoat://knowledge/"
RULE_TEMPLATE = "labcoat://rules/static/{code}"

# uri -> (the command printing it with --format json, what it is)
CATALOGUES = {
    "labcoat://rules/static": (
        ["toolkit.static.rules"],
        "static-analysis rules of python -m toolkit.static.check (code, doc, fix, severity)",
    ),
    "labcoat://rules/plan": (
        ["toolkit.plan", "rules"],
        "plan-lint rules of python -m toolkit.plan lint",
    ),
}


@dataclass(frozen=True)
class Res:
    name: str
    uri: str
    description: str
    mime: str


def knowledge_dir() -> Path | None:
    here = Path(__file__).resolve().parents[2] / "knowledge"
    root = os.environ.get("CLAUDE_PLUGIN_ROOT")
    for folder in (here, Path(root) / "knowledge" if root else None):
        if folder is not None and folder.is_dir():
            return folder
    return None


def _docs() -> dict[str, Path]:
    folder = knowledge_dir()
    return {p.stem: p for p in sorted(folder.glob("*.md"))} if folder else {}


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def catalogue() -> list[Res]:
    """Every fixed resource: knowledge docs, then the rule catalogues."""
    out = [
        Res(f"knowledge/{stem}", f"{KNOWLEDGE_PREFIX}{stem}", _title(p), "text/markdown")
        for stem, p in _docs().items()
    ]
    out += [
        Res(uri.removeprefix("labcoat://"), uri, text, "application/json")
        for uri, (_, text) in CATALOGUES.items()
    ]
    return out


def _cli_json(argv: list[str]) -> str:
    from toolkit.mcp.runner import command

    cmd, env = command(argv[0], [*argv[1:], "--format", "json"])
    done = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"python -m {' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def read(uri: str) -> tuple[str, str]:
    """(mime type, text) of a resource; KeyError names an unknown uri. Blocking: call it from
    a worker thread."""
    if uri.startswith(KNOWLEDGE_PREFIX):
        doc = _docs().get(uri.removeprefix(KNOWLEDGE_PREFIX))
        if doc is not None:
            return "text/markdown", doc.read_text(encoding="utf-8")
    if uri in CATALOGUES:
        return "application/json", _cli_json(CATALOGUES[uri][0])
    prefix = RULE_TEMPLATE.removesuffix("{code}")
    if uri.startswith(prefix):
        code = uri.removeprefix(prefix).upper()
        rules = json.loads(_cli_json(["toolkit.static.rules", "--select", code]))["rules"]
        match = [r for r in rules if r["code"] == code]
        if match:
            return "application/json", json.dumps(match[0], indent=2)
    known = [r.uri for r in catalogue()] + [RULE_TEMPLATE]
    raise KeyError(f"unknown resource {uri!r}; expected one of {known}")
