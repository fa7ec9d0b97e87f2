"""Grid sweeps: ``--param lr=1e-4,3e-4 --param bs=8,16`` -> one run per combination.

The command template names parameters as ``{lr}``; each value is substituted shell-quoted
(``shlex.quote``). ``${VAR}`` shell expansions are left alone. Run names are
``<sweep>-<param>_<value>-...`` with characters outside ``[A-Za-z0-9.+-]`` replaced by ``_``.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Sequence

from toolkit.errors import InputError

_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]")


def parse_params(items: Sequence[str]) -> dict[str, list[str]]:
    """``["lr=1e-4,3e-4", "bs=8,16"]`` -> ``{"lr": ["1e-4", "3e-4"], "bs": ["8", "16"]}``."""
    params: dict[str, list[str]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not _PARAM_NAME.match(key):
            raise InputError(f"--param {item!r}: expected NAME=V1,V2,... (NAME an identifier)")
        values = [v.strip() for v in raw.split(",")]
        if not values or any(not v for v in values):
            raise InputError(f"--param {item!r}: empty value; expected NAME=V1,V2,...")
        if len(set(values)) != len(values):
            raise InputError(f"--param {item!r}: repeated value")
        if key in params:
            raise InputError(f"--param {key} given twice")
        params[key] = values
    if not params:
        raise InputError("sweep grid needs at least one --param NAME=V1,V2,...")
    return params


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def render(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: shlex.quote(values[m.group(1)]), template)


def run_name(sweep: str, values: dict[str, str]) -> str:
    parts = [f"{k}_{_UNSAFE.sub('_', v)}" for k, v in values.items()]
    return "-".join([sweep, *parts])


def expand(sweep: str, params: dict[str, list[str]], template: str) -> list[dict[str, object]]:
    """One ``{"name", "command", "params"}`` per combination, in ``itertools.product`` order."""
    if not template.strip():
        raise InputError("--command: give the command template, e.g. 'python train.py --lr {lr}'")
    used = set(placeholders(template))
    unknown = sorted(used - set(params))
    if unknown:
        raise InputError(
            f"--command uses {', '.join('{' + u + '}' for u in unknown)} but no --param defines "
            f"it; parameters: {', '.join(params)}"
        )
    unused = [k for k in params if k not in used]
    if unused:
        raise InputError(
            f"--param {', '.join(unused)} not used in --command (add {{{unused[0]}}}); every "
            "combination would run the same command"
        )
    keys = list(params)
    specs: list[dict[str, object]] = []
    names: dict[str, dict[str, str]] = {}
    for combo in itertools.product(*(params[k] for k in keys)):
        values = dict(zip(keys, combo, strict=True))
        name = run_name(sweep, values)
        if name in names:
            raise InputError(
                f"parameter values {names[name]} and {values} give the same run name {name!r}"
            )
        names[name] = values
        specs.append({"name": name, "command": render(template, values), "params": values})
    return specs
