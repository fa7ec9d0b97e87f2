"""(d) every toolkit command written in the markdown exists, and every --flag written after it on
the same line is accepted by that command's parser (read from its --help).

Skills, agents, commands and knowledge name commands in launcher form, `labcoat AREA[.MODULE] ...`
(in code spans and fenced blocks); their --help is run through the plugin's own `bin/labcoat`, as
an agent would run it. README and docs/ keep `python -m toolkit...` for use from a checkout.

Where the command sits in an inline `code span`, "after it" ends at the span's closing backtick;
in a fenced block or bare text it runs to the end of the line (or the next toolkit command). Flags
inside quoted arguments and after a bare `--` belong to another program and are not checked."""

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest

from toolkit import launcher

from .conftest import LAUNCHER, ROOT, launcher_env, markdown_files, rel

CMD_RE = re.compile(
    r"python3?\s+-m\s+(toolkit(?:\.[A-Za-z_]\w*)+)"
    r"|(?<![\w/:.-])labcoat\s+((?:--python\s+\S+\s+)?[a-z_][a-z0-9_]*(?:\.[a-z_]\w*)*)(?![\w:-])"
)
LAUNCHER_VERBS = {"doctor", "help"}
PLUGIN_MARKDOWN = ("skills", "agents", "commands", "knowledge")
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
                # a transcript (text/console) shows output too: there a command follows "$ "
                in_fence = in_fence and (
                    "prompt" if line.strip()[3:] in ("text", "console") else True
                )
                continue
            matches = [
                m
                for m in CMD_RE.finditer(line)
                if m.group(1) or (_in_code(line, m.start(), in_fence) and _launcher_name(m))
            ]
            for i, m in enumerate(matches):
                end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
                if not in_fence and line[: m.start()].count("`") % 2 == 1:
                    # an inline `code span`: the command is what the span holds; prose after it
                    # may name another command's flags
                    close = line.find("`", m.end())
                    end = min(end, close) if close >= 0 else end
                module = m.group(1) or "toolkit." + _launcher_name(m)
                found.append((rel(path), n, module, line[m.end() : end]))
    return found


def _in_code(line: str, pos: int, in_fence: bool) -> bool:
    """In a fenced block or a code span, where a command starts: the line's start, a prompt,
    a span's opening backtick, or after ; | && ( (not program output that says "labcoat ...")."""
    before = line[:pos].rstrip()
    if in_fence == "prompt":
        return before.endswith("$")
    at_command = not before or before.endswith(("`", "$", "(", ";", "|", "&&"))
    return at_command and (in_fence or before.count("`") % 2 == 1)


def _launcher_name(m: re.Match) -> str:
    name = m.group(2).split()[-1]
    return "" if name in LAUNCHER_VERBS else name


@cache
def help_of(argv: tuple[str, ...]) -> tuple[int, str]:
    """--help of a command, through the launcher (labcoat's own environment, or the test's
    interpreter as the user's Python for commands that run user code)."""
    name = argv[0].removeprefix("toolkit.")
    python = ["--python", sys.executable] if launcher.needs_user_python(name) else []
    proc = subprocess.run(
        [str(LAUNCHER), *python, name, *argv[1:], "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=launcher_env(),
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
    assert OCCURRENCES, "no toolkit command found in any markdown"


def test_plugin_markdown_goes_through_the_launcher():
    """A bare `python -m toolkit...` fails in a user's project (no module named toolkit)."""
    bare = [
        f"{f}:{n}"
        for f, n, m, _ in OCCURRENCES
        if f.split("/")[0] in PLUGIN_MARKDOWN
        and "python" in _line(f, n)
        and f"-m {m}" in _line(f, n)
    ]
    assert not bare, f"use `labcoat ...` instead of `python -m toolkit...` at {bare}"


def _line(f: str, n: int) -> str:
    return (ROOT / f).read_text(encoding="utf-8").splitlines()[n - 1]


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
