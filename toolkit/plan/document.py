"""A plan as the linter sees it: lines, fenced code blocks, headings, sections and steps.

Line numbers are 1-based everywhere. Only ATX headings (``#`` .. ``######``) outside fenced code
blocks count as headings; fences are ``` or ~~~ (3 or more), closed by the same character.

How steps are recognised (the first rule that finds any wins):

1. Step headings, level 2 or deeper, whose text starts with ``Step N`` (``### Step 3: Train``,
   ``## Step 0 - Setup``) or with a number and ``.``/``)`` (``## 2. Data``, ``### 4) Eval``). A step
   runs to the next heading of the same or a higher level (its sub-headings belong to it).
2. Otherwise, top-level ordered list items (``1. ...`` / ``1) ...`` at column 0) whose nearest
   heading mentions steps, plan, procedure, phases, method, implementation or execution. Such a
   step runs to the next top-level item or the next heading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_STEP_HEADING_RE = re.compile(
    r"^(?:\*\*)?(?:step\s+(\d+[a-z]?)\b|(\d+)[.)](?=\s|$))", re.IGNORECASE
)
_LIST_STEP_RE = re.compile(r"^(\d+)[.)]\s+(.*)$")
_STEP_SECTION_RE = re.compile(
    r"step|plan|procedure|phase|method|implementation|execution", re.IGNORECASE
)
_URL_RE = re.compile(r"https?://[^\s<>()\[\]\"'`]+")
_INLINE_CODE_RE = re.compile(r"`+[^`\n]*`+")
_QUOTE_RE = re.compile(r"\"([^\"]+)\"|“([^”]+)”")
_WORD_RE = re.compile(r"[A-Za-z0-9][\w'’-]*")


@dataclass(frozen=True)
class Heading:
    """An ATX heading: 1-based ``line``, ``level`` 1..6, ``text`` without the ``#`` marks."""

    line: int
    level: int
    text: str


@dataclass(frozen=True)
class CodeBlock:
    """A fenced block: ``start``/``end`` are the fence lines; ``info`` is the language tag."""

    start: int
    end: int
    info: str
    body: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One plan step, lines ``start``..``end`` inclusive; ``kind`` is heading or list."""

    number: str
    title: str
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Url:
    """A URL found at ``line``; ``specific`` when it names a page, not a site's root."""

    line: int
    url: str
    specific: bool


@dataclass
class Document:
    """Parsed plan. ``lines[i]`` is line ``i + 1``; ``in_code[i]`` marks fenced-block lines."""

    lines: list[str]
    in_code: list[bool]
    headings: list[Heading]
    code_blocks: list[CodeBlock]
    steps: list[Step]

    def text(self, line: int) -> str:
        """The text of 1-based ``line``."""
        return self.lines[line - 1]

    def prose(self, start: int = 1, end: int | None = None) -> list[tuple[int, str]]:
        """``(line, text)`` outside fenced code blocks, ``start``..``end`` inclusive."""
        end = len(self.lines) if end is None else end
        return [(n, self.lines[n - 1]) for n in range(start, end + 1) if not self.in_code[n - 1]]

    def section_end(self, heading: Heading) -> int:
        """Last line of ``heading``'s section (up to the next heading of level <= its own)."""
        for other in self.headings:
            if other.line > heading.line and other.level <= heading.level:
                return other.line - 1
        return len(self.lines)

    def sections(self, pattern: re.Pattern[str]) -> list[tuple[Heading, int, int]]:
        """Sections whose heading text matches ``pattern``: ``(heading, start, end)``."""
        return [(h, h.line, self.section_end(h)) for h in self.headings if pattern.search(h.text)]

    def enclosing_section(self, line: int) -> tuple[int, int]:
        """``(start, end)`` of the innermost heading section holding ``line`` (whole file if none)."""
        best = None
        for heading in self.headings:
            if heading.line <= line and self.section_end(heading) >= line:
                best = heading
        if best is None:
            return 1, len(self.lines)
        return best.line, self.section_end(best)

    def code_text(self) -> list[tuple[int, str]]:
        """``(line, text)`` of code: fenced block bodies and inline code spans in prose."""
        out = [item for block in self.code_blocks for item in block.body]
        for number, text in self.prose():
            out += [(number, span.strip("`")) for span in _INLINE_CODE_RE.findall(text)]
        return sorted(out)


def parse(text: str) -> Document:
    """Parse markdown ``text`` into a :class:`Document`."""
    lines = text.splitlines()
    in_code = [False] * len(lines)
    headings: list[Heading] = []
    blocks: list[CodeBlock] = []
    fence: tuple[str, int, str, int] | None = None  # (char, length, info, start line)
    body: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        number = index + 1
        match = _FENCE_RE.match(line)
        if fence is None:
            if match:
                marks = match.group(1)
                fence = (marks[0], len(marks), match.group(2).lower(), number)
                body = []
                in_code[index] = True
                continue
            heading = _HEADING_RE.match(line)
            if heading:
                headings.append(Heading(number, len(heading.group(1)), heading.group(2)))
            continue
        in_code[index] = True
        closing = match and match.group(1)[0] == fence[0] and len(match.group(1)) >= fence[1]
        if closing and not match.group(2):
            blocks.append(CodeBlock(fence[3], number, fence[2], body))
            fence = None
        else:
            body.append((number, line))
    if fence is not None:
        blocks.append(CodeBlock(fence[3], len(lines), fence[2], body))
    doc = Document(lines, in_code, headings, blocks, [])
    doc.steps = _find_steps(doc)
    return doc


def _find_steps(doc: Document) -> list[Step]:
    steps = []
    for heading in doc.headings:
        match = _STEP_HEADING_RE.match(heading.text)
        if heading.level >= 2 and match:
            number = match.group(1) or match.group(2)
            steps.append(
                Step(number, heading.text, heading.line, doc.section_end(heading), "heading")
            )
    if steps:
        return steps
    items: list[tuple[int, str, str]] = []
    for number, text in doc.prose():
        match = _LIST_STEP_RE.match(text)
        if not match:
            continue
        start, _ = doc.enclosing_section(number)
        heading = next((h for h in doc.headings if h.line == start), None)
        if heading is not None and _STEP_SECTION_RE.search(heading.text):
            items.append((number, match.group(1), match.group(2)))
    boundaries = {h.line for h in doc.headings}
    for i, (line, num, title) in enumerate(items):
        end = len(doc.lines)
        stop_at = items[i + 1][0] if i + 1 < len(items) else None
        for n in range(line + 1, len(doc.lines) + 1):
            if n == stop_at or n in boundaries:
                end = n - 1
                break
        steps.append(Step(num, title, line, end, "list"))
    return steps


# ----------------------------------------------------------------------------- text helpers


def strip_inline_code(text: str) -> str:
    """``text`` with inline code spans blanked out (same length, so columns stay put)."""
    return _INLINE_CODE_RE.sub(lambda m: " " * len(m.group(0)), text)


def urls(doc: Document, start: int = 1, end: int | None = None) -> list[Url]:
    """URLs in prose (not in fenced code) between ``start`` and ``end``.

    ``specific`` = the URL has a path beyond the domain root, a query or a ``#anchor``.
    """
    found = []
    for number, text in doc.prose(start, end):
        for raw in _URL_RE.findall(text):
            url = raw.rstrip(".,;:!?*_>")
            parts = urlparse(url)
            specific = bool(parts.path.strip("/") or parts.fragment or parts.query)
            found.append(Url(number, url, specific))
    return found


def word_count(text: str) -> int:
    """Words (runs of letters/digits) in ``text``."""
    return len(_WORD_RE.findall(text))


def quotes(doc: Document, start: int, end: int, min_words: int = 5) -> list[tuple[int, str]]:
    """Quoted passages of at least ``min_words`` words in prose lines ``start``..``end``.

    A quote is text in "straight" or “curly” double quotes (it may wrap across lines of one
    paragraph), or a ``>`` blockquote (consecutive ``>`` lines together). Returns
    ``(first line, quote text)``.
    """
    found: list[tuple[int, str]] = []
    prose = doc.prose(start, end)
    block: list[tuple[int, str]] = []
    for number, text in [*prose, (0, "")]:
        stripped = text.lstrip()
        if number and stripped.startswith(">"):
            block.append((number, stripped.lstrip(">").strip()))
            continue
        if block:
            joined = " ".join(t for _, t in block)
            if word_count(joined) >= min_words:
                found.append((block[0][0], joined))
            block = []
    # quotes inside paragraphs: join consecutive non-blank prose lines
    paragraph: list[tuple[int, str]] = []
    for number, text in [*prose, (0, "")]:
        if number and text.strip():
            paragraph.append((number, strip_inline_code(text)))
            continue
        if paragraph:
            joined = "\n".join(t for _, t in paragraph)
            for match in _QUOTE_RE.finditer(joined):
                quote = match.group(1) or match.group(2)
                if word_count(quote) >= min_words:
                    offset = joined[: match.start()].count("\n")
                    found.append((paragraph[offset][0], quote))
            paragraph = []
    return sorted(found)


def strip_quoted(text: str) -> str:
    """``text`` without inline code, quoted passages and URLs (for phrase checks)."""
    text = strip_inline_code(text)
    text = _QUOTE_RE.sub(lambda m: " " * len(m.group(0)), text)
    return _URL_RE.sub(lambda m: " " * len(m.group(0)), text)
