"""PL005: every dependency pinned with ``==``.

Where dependencies are read:

- ``pip install ...`` commands (also ``pip3``, ``python -m pip``, ``uv pip``) anywhere in code:
  fenced blocks (with ``\\`` continuations joined) and inline code spans;
- fenced blocks tagged ``requirements`` / ``requirements.txt`` / ``pip``, one requirement a line;
- inside a section whose heading mentions dependencies, requirements or packages: list items
  that start with a requirement (``torch==2.4.1``, `` `peft` ``, ``transformers>=4.40``) and the
  requirement-looking lines of its fenced blocks.

Paths, URLs, ``-r``/``-e`` and option values are skipped. Non-pip runtimes (python, CUDA,
cuDNN, NCCL, driver) are not packages and are skipped.
"""

from __future__ import annotations

import re
import shlex

from toolkit.plan.document import Document
from toolkit.plan.rules import Finding, finding

_PIP_RE = re.compile(r"(?:^|[\s;&|(`$])(?:uv\s+)?(?:python3?\s+-m\s+)?pip3?\s+install\s+(.*)$")
_REQ_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?\s*"
    r"(?P<spec>(?:===|==|~=|!=|>=|<=|>|<)\s*[^\s,;#`]+(?:\s*,\s*(?:===|==|~=|!=|>=|<=|>|<)\s*"
    r"[^\s,;#`]+)*)?"
)
_DEP_SECTION_RE = re.compile(r"dependenc|requirement|packages|pinned", re.IGNORECASE)
_REQ_BLOCK_INFO = {"requirements", "requirements.txt", "pip", "pip-requirements"}
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_VALUE_OPTIONS = {
    "-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
    "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--src", "--platform",
    "--python-version", "--implementation", "--abi", "--upgrade-strategy", "--cache-dir",
    "--trusted-host", "--no-binary", "--only-binary", "-e", "--editable", "--progress-bar",
}  # fmt: skip
_NOT_PACKAGES = {"python", "python3", "cuda", "cudnn", "nccl", "driver", "nvidia-driver", "os"}


def _problem(token: str) -> str | None:
    """Why requirement ``token`` is not pinned with ``==``, or ``None`` when it is (or is not a
    requirement at all)."""
    token = token.replace("**", "").strip().strip("`").strip()
    match = _REQ_RE.match(token)
    if not match or match.group("name").lower() in _NOT_PACKAGES:
        return None
    spec = match.group("spec")
    name = match.group("name") + (match.group("extras") or "")
    if spec is None:
        rest = token[match.end() :].strip()
        if rest and not rest.startswith(("#", "(", ":", "-", "—", "–")):
            return None
        return f"{name} is not pinned; write {name}==<version>"
    specs = [s.strip() for s in spec.split(",")]
    if len(specs) == 1 and specs[0].startswith("==") and "*" not in specs[0]:
        return None
    return f"{name}{spec.replace(' ', '')} is a range, not a pin; write {name}==<version>"


def _pip_tokens(args: str) -> list[str]:
    args = re.split(r"&&|\|\||;|\||`|\s#", args)[0]
    try:
        tokens = shlex.split(args)
    except ValueError:
        tokens = args.split()
    out, skip = [], False
    for token in tokens:
        if skip:
            skip = False
            continue
        if token.startswith("-"):
            skip = token in _VALUE_OPTIONS
            continue
        if token.startswith((".", "/", "~", "git+", "http:", "https:", "$")) or "/" in token:
            continue
        if token.endswith((".whl", ".tar.gz", ".zip")):
            continue
        out.append(token)
    return out


def _joined_code_lines(doc: Document) -> list[tuple[int, str]]:
    """Fenced code lines with backslash continuations joined, plus inline code spans."""
    out: list[tuple[int, str]] = []
    for block in doc.code_blocks:
        pending: tuple[int, str] | None = None
        for number, text in block.body:
            if pending is not None:
                number, text = pending[0], pending[1] + " " + text.strip()
            if text.rstrip().endswith("\\"):
                pending = (number, text.rstrip()[:-1])
                continue
            pending = None
            out.append((number, text))
        if pending is not None:
            out.append(pending)
    inline = [(n, t) for n, t in doc.code_text() if not doc.in_code[n - 1]]
    return out + inline


def check_dependencies(doc: Document) -> list[Finding]:
    """PL005 findings, one per unpinned requirement (deduplicated by line and text)."""
    problems: dict[tuple[int, str], str] = {}

    def note(line: int, token: str) -> None:
        why = _problem(token)
        if why:
            problems.setdefault((line, why), why)

    for number, text in _joined_code_lines(doc):
        match = _PIP_RE.search(text)
        if match:
            for token in _pip_tokens(match.group(1)):
                note(number, token)
    for block in doc.code_blocks:
        if block.info in _REQ_BLOCK_INFO:
            for number, text in block.body:
                if text.strip() and not text.strip().startswith(("#", "-")):
                    note(number, text.split("#")[0])
    for _, start, end in doc.sections(_DEP_SECTION_RE):
        for number in range(start + 1, end + 1):
            text = doc.text(number)
            if doc.in_code[number - 1]:
                stripped = text.strip()
                if (
                    stripped
                    and not _PIP_RE.search(" " + stripped)
                    and _REQ_RE.fullmatch(stripped.split("#")[0].strip())
                ):
                    note(number, stripped.split("#")[0])
                continue
            item = _LIST_ITEM_RE.match(text)
            if item:
                body = item.group(1).strip()
                code = re.match(r"^`([^`]+)`", body)
                note(number, code.group(1) if code else _leading_requirement(body))
    return [finding("PL005", line, why) for (line, why) in sorted(problems)]


def _leading_requirement(body: str) -> str:
    """The requirement an item starts with: ``name<spec>`` or a lone name before ``—``/``(``/``:``.

    Prose items ("All versions below are pinned") give '' (not a requirement).
    """
    body = body.replace("**", "")
    match = _REQ_RE.match(body)
    if match and match.group("spec"):
        return match.group(0)
    head = re.split(r"\s+[—–-]\s+|\s*\(|:\s|\s+#", body, maxsplit=1)[0].strip()
    return head if match and " " not in head else ""
