"""PNG of a run's curves with the findings marked (matplotlib, Agg backend, imported lazily).

Panels: train loss (raw + EMA) with validation loss, learning rate, grad norm (and throughput
when logged). Findings: a shaded span over their step range (a line for one step), red for
errors, orange for warnings, grey for info. Long series are decimated for drawing only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.compare import ema
from toolkit.logs.detectors import Finding
from toolkit.logs.series import Run, Series

COLORS = {"error": "#d62728", "warning": "#ff7f0e", "info": "#7f7f7f"}
MAX_DRAWN_POINTS = 20_000


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError(
            "--plot needs matplotlib: pip install 'labcoat[plot]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _decimate(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if steps.size <= MAX_DRAWN_POINTS:
        return steps, values
    stride = int(np.ceil(steps.size / MAX_DRAWN_POINTS))
    return steps[::stride], values[::stride]


def _draw(ax, series: Series, label: str, smooth: bool = False, **kw) -> None:
    s, v = _decimate(series.steps, series.values)
    if smooth:
        ok = np.isfinite(series.values)
        ax.plot(s, v, lw=0.6, alpha=0.35, label=f"{label} (raw)", **kw)
        es, ev = _decimate(series.steps[ok], ema(series.values[ok]))
        ax.plot(es, ev, lw=1.4, label=f"{label} (EMA 0.1)", **kw)
    else:
        ax.plot(s, v, lw=1.0, label=label, **kw)


def _mark(ax, findings: list[Finding]) -> None:
    for f in findings:
        color = COLORS.get(f.severity, "grey")
        if f.step_end > f.step_start:
            ax.axvspan(f.step_start, f.step_end, color=color, alpha=0.15, lw=0)
        else:
            ax.axvline(f.step_start, color=color, lw=1.0, ls="--", alpha=0.8)


def plot_run(run: Run, findings: list[Finding], out: str | Path) -> Path:
    plt = _pyplot()
    out = Path(out)
    panels = []
    loss, val = run.role("train_loss"), run.role("val_loss")
    if loss is not None or val is not None:
        panels.append(("loss", [(loss, "train loss", True), (val, "val loss", False)]))
    for role, label in (
        ("lr", "learning rate"),
        ("grad_norm", "grad norm"),
        ("throughput", "throughput"),
    ):
        series = run.role(role)
        if series is not None:
            panels.append((role, [(series, label, role == "grad_norm")]))
    if not panels:  # no recognised roles: plot the first few metrics as they are
        panels = [(n, [(s, n, False)]) for n, s in list(run.series.items())[:4]]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(11, 2.6 * len(panels) + 0.8), sharex=True, squeeze=False
    )
    for ax, (role, items) in zip(axes[:, 0], panels, strict=True):
        for series, label, smooth in items:
            if series is None:
                continue
            if label == "val loss":
                ax.plot(
                    series.steps,
                    series.values,
                    "o-",
                    ms=3,
                    lw=1.0,
                    color="#2ca02c",
                    label=f"{label} ({series.name})",
                )
            else:
                _draw(ax, series, f"{label} ({series.name})", smooth=smooth)
        related = [
            f for f in findings if f.metric in {s.name for s, _, _ in items if s is not None}
        ]
        _mark(ax, findings)
        for f in related:
            if f.kind in ("loss_spike", "grad_norm_spike", "nan_inf"):
                ax.annotate(
                    f.kind,
                    (f.step_start, 1.0),
                    xycoords=("data", "axes fraction"),
                    fontsize=7,
                    color=COLORS.get(f.severity, "grey"),
                    rotation=90,
                    va="top",
                )
        if role in ("loss", "grad_norm"):
            vals = np.concatenate(
                [s.values[np.isfinite(s.values)] for s, _, _ in items if s is not None]
                or [np.zeros(0)]
            )
            if vals.size and vals.min() > 0 and vals.max() / vals.min() > 20:
                ax.set_yscale("log")
        ax.set_ylabel(role)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("step")
    counts = {s: sum(f.severity == s for f in findings) for s in COLORS}
    fig.suptitle(
        f"{run.path.name} ({run.format}): {counts['error']} error, {counts['warning']} warning, {counts['info']} info",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_curves(
    curves: dict[str, Series], metric: str, out: str | Path, best: str | None = None
) -> Path:
    """One PNG with ``metric``'s curve from each run (``curves``: label -> series); the best
    run's line is drawn thicker and named in the title."""
    plt = _pyplot()
    out = Path(out)
    fig, ax = plt.subplots(figsize=(11, 5))
    for label, series in curves.items():
        s, v = _decimate(series.steps, series.values)
        ax.plot(s, v, lw=2.4 if label == best else 1.0, marker="o" if len(s) <= 30 else None,
                ms=3, label=f"{label}{' (best)' if label == best else ''}")  # fmt: skip
    vals = np.concatenate(
        [s.values[np.isfinite(s.values)] for s in curves.values()] or [np.zeros(0)]
    )
    if vals.size and vals.min() > 0 and vals.max() / vals.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{metric}: {len(curves)} runs" + (f"; best {best}" if best else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
