"""Spike detector on long clean logs: false spikes on 3 clean 1,000,000-row logs, and recall of
spikes injected into the same logs.

    python bench/logs_spikes.py [--rows 1000000] [--out FILE.json]

The three clean logs (``toolkit.logs.synth.healthy_run`` curves: warm-up + cosine lr, power-law
loss, log-normal grad norm), each with a different realistic noise:

- ``iid-2pct``: loss x (1 + 2 % Gaussian), grad norm x exp(0.15 N) (healthy_run as it is);
- ``ar1-4pct``: loss noise 4 %, AR(1)-correlated from step to step (rho 0.7: neighbouring
  batches alike), grad norm x exp(0.25 N);
- ``hetero``: loss noise falling from 6 % early to 1.5 % late, grad norm x exp(0.2 N).

Each log is written as JSONL, read with ``read_log`` and analysed with every detector; a clean
log must give 0 ``loss_spike`` / ``grad_norm_spike`` findings. Then 12 spikes are injected per
log (loss x1.5, x2, x3, each with a grad-norm spike 3 steps before: synth.inject_spike) and the
detected ones counted. Prints a table, writes JSON. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from toolkit.logs import analyze, read_log, synth

SPIKES = (1.5, 2.0, 3.0)


def clean_log(kind: str, rows: int, seed: int) -> synth.Columns:
    cols = synth.healthy_run(steps=rows, seed=seed, eval_every=1000)
    rng = np.random.default_rng(seed + 100)
    s, loss = cols["loss"]
    clean = 2.2 + 8.5 * (1 + s / 60.0) ** -0.6
    gs, grad = cols["grad_norm"]
    base_grad = 0.4 + 2.0 * (1 + gs / 100.0) ** -0.5
    if kind == "ar1-4pct":
        eps = rng.standard_normal(rows)
        ar = np.empty(rows)
        ar[0] = eps[0]
        rho = 0.7
        for i in range(1, rows):  # scaled so the stationary std is 1
            ar[i] = rho * ar[i - 1] + np.sqrt(1 - rho**2) * eps[i]
        loss[:] = clean * (1 + 0.04 * ar)
        grad[:] = base_grad * np.exp(0.25 * rng.standard_normal(rows))
    elif kind == "hetero":
        level = 0.015 + 0.045 * np.exp(-s / (rows / 10))
        loss[:] = clean * (1 + level * rng.standard_normal(rows))
        grad[:] = base_grad * np.exp(0.2 * rng.standard_normal(rows))
    return cols


def spikes_found(path: Path) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    rep = analyze(read_log(path))
    took = time.perf_counter() - t0
    found = [
        {"kind": f.kind, "step": f.step_start, "severity": f.severity, "message": f.message}
        for f in rep.findings
        if f.kind in ("loss_spike", "grad_norm_spike")
    ]
    return found, took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/logs_spikes.json"))
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="logs-spikes-") as tmp:
        for seed, kind in enumerate(("iid-2pct", "ar1-4pct", "hetero")):
            cols = clean_log(kind, args.rows, seed)
            path = synth.write_jsonl(Path(tmp) / f"{kind}.jsonl", cols)
            false, took = spikes_found(path)
            rng = np.random.default_rng(seed)
            at = np.sort(rng.choice(np.arange(args.rows // 20, args.rows - 10), 12, replace=False))
            for i, step in enumerate(at):
                synth.inject_spike(cols, int(step), SPIKES[i % len(SPIKES)])
            path = synth.write_jsonl(Path(tmp) / f"{kind}-spiked.jsonl", cols)
            found, _ = spikes_found(path)
            loss_steps = {f["step"] for f in found if f["kind"] == "loss_spike"}
            hit = [int(s) for s in at if int(s) in loss_steps]
            results.append({
                "log": kind, "rows": args.rows, "false_spikes": len(false), "false": false[:10],
                "injected": len(at), "detected": len(hit),
                "missed": [(int(s), SPIKES[i % 3]) for i, s in enumerate(at) if int(s) not in hit],
                "other_loss_spikes_when_spiked": len(loss_steps - set(hit)),
                "read_and_analyze_s": round(took, 2),
            })  # fmt: skip
    print(
        f"{'log':10} {'rows':>9}  {'false spikes':>12}  {'injected':>8}  {'detected':>8}  {'s':>6}"
    )
    for r in results:
        print(
            f"{r['log']:10} {r['rows']:>9}  {r['false_spikes']:>12}  {r['injected']:>8}  "
            f"{r['detected']:>8}  {r['read_and_analyze_s']:>6}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
