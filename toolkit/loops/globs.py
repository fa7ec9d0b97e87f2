"""Path globs for Fixed / Variable files, matched against repo-relative POSIX paths.

``*`` and ``?`` never cross ``/``; ``**`` matches any number of directories (``src/**``,
``**/*.py``); ``[abc]`` is a character class. A pattern matches the whole path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    i, out, n = 0, [], len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, patterns: Sequence[str]) -> bool:
    return any(compile_glob(p).match(path) for p in patterns)


def filter_paths(paths: Iterable[str], pattern: str) -> list[str]:
    rx = compile_glob(pattern)
    return [p for p in paths if rx.match(p)]
