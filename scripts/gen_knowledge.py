"""Regenerate the tables in knowledge/*.md and skills/*/references/*.md from the toolkit's data.

Each table lives between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``; the text
in between is replaced by the output of the generator named NAME. Prose outside the markers is
never touched.

    python scripts/gen_knowledge.py            # rewrite stale tables in place
    python scripts/gen_knowledge.py --check    # exit 1 and name every stale table; write nothing

Sources: GPU peaks from ``toolkit.hardware.specs.all_specs()`` (gpu_specs.yaml); compute-optimal
sizes from ``toolkit.compute.chinchilla``; bytes per parameter of model states from
``toolkit.compute.memory`` (PRECISIONS and the optimizer-state formula) and ``toolkit.compute.lora``;
the watchdog's failure patterns from ``toolkit.watchdog.catalogue``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
BLOCK_RE = re.compile(
    r"(<!-- generated: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S
)
NOTE = "<!-- do not edit: scripts/gen_knowledge.py writes this table -->\n"


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:g}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def gpu_table() -> str:
    from toolkit.hardware.specs import all_specs

    dtypes = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp4")
    rows = []
    for s in all_specs():
        rows.append(
            (f"`{s.key}`", s.name, _fmt(s.memory_gib), _fmt(s.memory_bandwidth_gbs))
            + tuple(_fmt(s.peak_tflops.get(d)) for d in dtypes)
        )
    header = ("key", "name", "memory GiB", "bandwidth GB/s") + tuple(f"{d} TFLOP/s" for d in dtypes)
    return (
        _table(header, rows)
        + "\nDense peaks (no 2:4 sparsity); fp32 is non-tensor FP32 on NVIDIA, matrix FP32 on AMD."
        " '-' = the part lacks the dtype. Sources: `labcoat hardware specs`.\n"
    )


CHINCHILLA_PARAMS = (125e6, 350e6, 1.3e9, 2.7e9, 7e9, 13e9, 34e9, 70e9, 405e9)
CHINCHILLA_COMPUTE = (1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25)


def chinchilla_table() -> str:
    from toolkit.compute.chinchilla import chinchilla

    by_n = [chinchilla(params=n) for n in CHINCHILLA_PARAMS]
    by_c = [chinchilla(compute_flops=c) for c in CHINCHILLA_COMPUTE]
    a = _table(
        ("params N", "tokens D = 20 N", "compute C = 6 N D (FLOPs)"),
        [(f"{p.params:.3g}", f"{p.tokens:.3g}", f"{p.compute_flops:.3g}") for p in by_n],
    )
    b = _table(
        ("compute C (FLOPs)", "params N", "tokens D"),
        [(f"{p.compute_flops:.0e}", f"{p.params:.3g}", f"{p.tokens:.3g}") for p in by_c],
    )
    return (
        "By model size:\n\n"
        + a
        + "\nBy compute budget:\n\n"
        + b
        + "\nFrom `labcoat compute chinchilla --params N` / `--compute C`.\n"
    )


def bytes_per_param_table() -> str:
    from toolkit.compute.lora import (
        NF4_BITS_PER_PARAM,
        NF4_DOUBLE_QUANT_BITS_PER_PARAM,
        NF4_SINGLE_QUANT_BITS_PER_PARAM,
    )
    from toolkit.compute.memory import PRECISIONS, Setup, _optimizer_state_bytes

    n = 1_000_000
    rows = []
    for pname in ("fp32", "bf16-mixed", "fp16-mixed", "bf16"):
        prec = PRECISIONS[pname]
        for opt in ("adamw", "sgd", "adam8bit"):
            setup = Setup(precision=pname, optimizer=opt)
            state, _ = _optimizer_state_bytes(setup, prec, n, [], 0)
            per_state = state / n
            total = prec.weight_bytes + prec.grad_bytes + per_state
            rows.append(
                (pname, opt, _fmt(prec.weight_bytes), _fmt(prec.grad_bytes),
                 _fmt(prec.master_bytes), _fmt(per_state - prec.master_bytes),
                 _fmt(total))
            )  # fmt: skip
    nf4_dq = (NF4_BITS_PER_PARAM + NF4_DOUBLE_QUANT_BITS_PER_PARAM) / 8
    nf4_sq = (NF4_BITS_PER_PARAM + NF4_SINGLE_QUANT_BITS_PER_PARAM) / 8
    return (
        _table(
            (
                "precision",
                "optimizer",
                "weight B",
                "grad B",
                "fp32 master B",
                "optimizer states B",
                "total B/param",
            ),
            rows,
        )  # fmt: skip
        + "\nFull training, unsharded, per trainable parameter; activations and overhead excluded."
        " ZeRO/FSDP divide these over GPUs (`labcoat compute memory --zero-stage`)."
        " Adafactor depends on matrix shapes: use `compute memory --optimizer adafactor`.\n\n"
        f"Frozen base weights under QLoRA (NF4): {nf4_dq:.6g} B/param with double quantization,"
        f" {nf4_sq:.6g} B/param without; LoRA/QLoRA adapters pay the full row above.\n"
    )


def watchdog_catalogue_table() -> str:
    from toolkit.watchdog.catalogue import RESTARTABLE, patterns

    rows = [
        (
            str(p.rank),
            f"{p.cls} / {p.subclass}",
            "`" + p.regex.replace("|", "\\|") + "`",
            p.meaning,
            "yes" if p.cls in RESTARTABLE else "no: stops",
            p.action or "-",
        )
        for p in patterns()
    ]
    header = (
        "rank",
        "class / subclass",
        "pattern (regex, any case)",
        "meaning",
        "restarted",
        "action",
    )
    return (
        _table(header, rows)
        + "\nFrom `toolkit/watchdog/catalogue.py`; lowest rank wins when several match.\n"
    )


GENERATORS: dict[str, Callable[[], str]] = {
    "watchdog-catalogue": watchdog_catalogue_table,
    "gpu-table": gpu_table,
    "chinchilla-table": chinchilla_table,
    "bytes-per-param": bytes_per_param_table,
}


def render(text: str, source: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in GENERATORS:
            raise SystemExit(
                f"{source}: unknown generated block {name!r} (known: {', '.join(GENERATORS)})"
            )
        return m.group(1) + NOTE + GENERATORS[name]() + m.group(4)

    return BLOCK_RE.sub(sub, text)


def targets() -> list[Path]:
    """The markdown files that may hold generated blocks."""
    return sorted(KNOWLEDGE.glob("*.md")) + sorted(ROOT.glob("skills/*/references/*.md"))


def run(check: bool, directory: Path | None = None) -> list[str]:
    """Rewrite (or, with ``check``, only list) every file whose generated tables are stale.

    ``directory``: only the ``*.md`` files there (tests); default :func:`targets`.
    """
    stale = []
    for path in sorted(directory.glob("*.md")) if directory else targets():
        text = path.read_text(encoding="utf-8")
        new = render(text, str(path))
        if new != text:
            stale.append(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path))
            if not check:
                path.write_text(new, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--check", action="store_true", help="report stale tables, write nothing; exit 1 if any"
    )
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    stale = run(args.check)
    for path in stale:
        print(f"{'stale' if args.check else 'updated'}: {path}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
