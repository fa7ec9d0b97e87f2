"""Compare a sweep's runs: read each run's log with :mod:`toolkit.logs`, table the metric,
name the best run, plot the curves together.

Which log: ``--log TEMPLATE`` when given, else the run's captured output (``log_path``,
read as a key=value text log). The template is formatted per run with ``{name}``,
``{workdir}`` and the run's parameters (``{lr}``); a relative result is taken from the run's
working directory. Runs still queued, or without a readable log, stay in the table with the
reason and are never the best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from toolkit.errors import InputError
from toolkit.logs.rank import Score, default_metric, find_series, score, winner
from toolkit.logs.readers import read_log
from toolkit.logs.series import Run as LogRun
from toolkit.runs.models import SUCCEEDED, Run


@dataclass
class SweepComparison:
    sweep: str
    metric: str
    mode: str  # min | max
    by: str  # best | final
    scores: list[Score]
    params: dict[str, dict[str, str]]  # run name -> params
    status: dict[str, str]  # run name -> status
    best: str | None = None
    plot: str | None = None
    notes: list[str] = field(default_factory=list)


def log_path(run: Run, template: str | None) -> Path | None:
    if template is None:
        return Path(run.log_path) if run.log_path else None
    try:
        text = template.format(name=run.name, workdir=run.workdir, **run.params)
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(
            f"--log {template!r}: cannot fill it for run {run.name!r} ({exc}); use {{name}}, {{workdir}} or a parameter of the sweep"
        ) from None
    path = Path(text)
    return path if path.is_absolute() else Path(run.workdir) / path


def compare_sweep(
    sweep: str, runs: list[Run], metric: str | None, mode: str, by: str = "best",
    template: str | None = None, plot: str | None = None,
) -> SweepComparison:  # fmt: skip
    """Score every run of ``sweep``; the best is picked among succeeded runs only."""
    logs: dict[str, LogRun | None] = {}
    errors: dict[str, str] = {}
    for r in runs:
        path = log_path(r, template)
        if path is None:
            logs[r.name], errors[r.name] = None, f"no log yet (run is {r.status})"
            continue
        try:
            logs[r.name] = read_log(path)
        except InputError as exc:
            logs[r.name], errors[r.name] = None, str(exc)
    chosen = metric or default_metric([lg for lg in logs.values() if lg is not None])
    scores = []
    for r in runs:
        lg = logs[r.name]
        scores.append(score(r.name, lg, chosen, mode) if lg is not None
                      else Score(r.name, None, error=errors[r.name]))  # fmt: skip
    done = {r.name for r in runs if r.status == SUCCEEDED}
    top = winner([s for s in scores if s.label in done], mode, by)
    out = SweepComparison(sweep, chosen, mode, by, scores, {r.name: r.params for r in runs},
                          {r.name: r.status for r in runs}, best=top.label if top else None)  # fmt: skip
    if top is None:
        out.notes.append(f"no succeeded run has a finite {chosen!r}; nothing to rank")
    if plot:
        from toolkit.logs.plot import plot_curves

        curves = {n: find_series(lg, chosen) for n, lg in logs.items() if lg is not None}
        curves = {k: v for k, v in curves.items() if v is not None}
        if curves:
            out.plot = str(plot_curves(curves, chosen, plot, out.best))
        else:
            out.notes.append("no curve to plot")
    return out
