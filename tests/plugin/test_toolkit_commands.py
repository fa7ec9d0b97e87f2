"""(d) every `python -m toolkit...` command written in the markdown exists, and every --flag written
after it on the same line is accepted by that command's parser (read from its --help).

Where the command sits in an inline `code span`, "after it" ends at the span's closing backtick;
in a fenced block or bare text it runs to the end of the line (or the next toolkit command). Flags
inside quoted arguments and after a bare `--` belong to another program and are not checked."""

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest

from .conftest import ROOT, markdown_files, rel

CMD_RE = re.compile(r"python3?\s+-m\s+(toolkit(?:\.[A-Za-z_]\w*)+)")
FLAG_RE = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*)")
CHOICES_RE = re.compile(r"\{([\w,-]+)\}")
QUOTED_RE = re.compile(r"(?<=[\s=])(\"[^\"]*\"|'[^']*')")


def occurrences():
    """(file, line number, module, text after the module up to the next command)."""
    found = []
    for path in markdown_files():
        in_fence = False
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
                continue
            matches = list(CMD_RE.finditer(line))
            for i, m in enumerate(matches):
                end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
                if not in_fence and line[: m.start()].count("`") % 2 == 1:
                    # an inline `code span`: the command is what the span holds; prose after it
                    # may name another command's flags
                    close = line.find("`", m.end())
                    end = min(end, close) if close >= 0 else end
                found.append((rel(path), n, m.group(1), line[m.end() : end]))
    return found


@cache
def help_of(argv: tuple[str, ...]) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", *argv, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def usage_block(text: str) -> str:
    return text.split("\n\n", 1)[0]


def subcommands(text: str) -> set[str]:
    """Subcommand names: the {a,b,c} positional in the usage line."""
    names = set()
    for group in CHOICES_RE.findall(usage_block(text)):
        names |= set(group.split(","))
    return names


def accepted_flags(text: str) -> set[str]:
    flags = set(FLAG_RE.findall(usage_block(text)))
    flags |= set(re.findall(r"(?m)^\s{2,}(?:-\w[\w-]*(?: \S+)?, )?(--[A-Za-z][\w-]*)", text))
    return flags | {"--help"}


def resolve(module: str, rest: str) -> tuple[tuple[str, ...], str, list[str]]:
    """Walk subcommands as far as the words after the module name go; return the argv, its help,
    and the flags written after it (before a bare '--', which starts the child's arguments)."""
    argv = (module,)
    words = rest.split()
    code, text = help_of(argv)
    i = 0
    while code == 0 and i < len(words):
        word = words[i].strip("`'\"[](),;:|")
        if word in subcommands(text):
            argv += (word,)
            code, text = help_of(argv)
            i += 1
        else:
            break
    tail = []
    # quoted arguments (--command "python train.py --lr ...") hold another program's flags
    unquoted = QUOTED_RE.sub(" ", " " + " ".join(words[i:]))
    for w in unquoted.split():
        if w.strip("`") == "--":
            break
        tail.append(w)
    return argv, text if code == 0 else "", FLAG_RE.findall(" ".join(tail))


OCCURRENCES = occurrences()


@pytest.fixture(scope="module", autouse=True)
def warm_help_cache():
    """Run the distinct --help calls in parallel (each imports torch)."""
    modules = sorted({m for _, _, m, _ in OCCURRENCES})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda m: help_of((m,)), modules))


def test_markdown_has_toolkit_commands():
    assert OCCURRENCES, "no `python -m toolkit...` command found in any markdown"


@pytest.mark.parametrize(
    "where,module,rest",
    [(f"{f}:{n}", m, r) for f, n, m, r in OCCURRENCES],
    ids=[f"{f}:{n}:{m}" for f, n, m, _ in OCCURRENCES],
)
def test_command_exists_and_flags_are_accepted(where, module, rest):
    argv, text, flags = resolve(module, rest)
    code, out = help_of(argv)
    assert code == 0, f"{where}: `python -m {' '.join(argv)} --help` exited {code}:\n{out[-2000:]}"
    accepted = accepted_flags(text)
    unknown = [f for f in flags if f not in accepted]
    assert not unknown, (
        f"{where}: `python -m {' '.join(argv)}` does not accept {unknown}; it accepts {sorted(accepted)}"
    )
