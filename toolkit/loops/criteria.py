"""ml-iteration: judge a change against ``review_criteria.yaml``, then commit or roll back.

``review_criteria.yaml``::

    name: exp1                     # optional: state folder .labcoat/iterate/<name>/ (default "default")
    variable_files: ["src/**"]     # optional: paths a change may touch (default: everything)
    metrics:                       # quality metrics
      - {name: val_loss, direction: minimize, threshold: 2.5, min_delta: 0.01}
    performance:                   # speed metrics; same fields, plus a relative tolerance
      - {name: step_time_s, direction: minimize, max_regression_pct: 5}
      - {name: mfu, direction: maximize, threshold: 0.30}
    observability: {required_keys: [loss, lr, grad_norm]}
    stability: {no_nan: [loss, grad_norm]}     # or no_nan: true for every value
    custom:
      - {name: unit tests, command: "pytest -q tests", timeout_s: 600}

``--metrics`` is a JSON object (numbers, or lists of numbers for series). Each criterion is
``pass`` / ``improved`` / ``regressed`` / ``fail`` with its numbers. Threshold missed, key
missing, NaN/Inf, command failed or a change outside ``variable_files`` -> ``fail``. Against
the baseline (``--baseline`` or the last accepted metrics) a move beyond
``max(min_delta, |baseline| * max_regression_pct / 100)`` is improved / regressed.

Which paths are the change's: tracked changes, plus untracked files that were not there after
the previous judge (snapshot in ``.labcoat/iterate/<name>/``). The baseline judge (``--no-git``)
records the first snapshot; without one, every untracked file is the user's. An untracked file
in the snapshot is the user's: never committed or moved; a change to it is reported.
The git action is journaled (``journal.json``) before it runs; the next judge finishes it.

Verdict: any fail -> ``rollback``; improved and nothing regressed -> ``commit``; improved and
something regressed -> ``accept_with_note`` (committed; the note names the trade-off); nothing
improved but something regressed -> ``rollback``; nothing moved -> ``accept_with_note``
("neutral"). The git action uses :mod:`toolkit.loops.gitops`, the same safe code as autoresearch.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.cli import print_json, read_text, render_table
from toolkit.errors import InputError
from toolkit.loops import gitops, records
from toolkit.loops.judge import run_limited

EXIT_COMMIT = 0
EXIT_ROLLBACK = 3
EXIT_RUN_FAILED = 4  # iterate run: crashed, timed out, stalled, metrics missing (rolled back)
EXIT_ACCEPT_WITH_NOTE = 5
VERDICT_EXIT = {
    "commit": EXIT_COMMIT,
    "rollback": EXIT_ROLLBACK,
    "accept_with_note": EXIT_ACCEPT_WITH_NOTE,
}


@dataclass
class CriterionResult:
    name: str
    kind: str  # metric | performance | observability | stability | custom | scope
    status: str  # pass | improved | regressed | fail
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    message: str = ""


@dataclass
class IterateResult:
    verdict: str
    criteria: list[CriterionResult]
    note: str = ""
    commit: str | None = None
    rollback: dict[str, Any] | None = None
    git: bool = True
    notes: list[str] = field(default_factory=list)
    run: dict[str, Any] | None = None  # iterate run: status, commands, logs, metrics files

    @property
    def exit_code(self) -> int:
        if self.run is not None and self.run.get("status") != "ok":
            return EXIT_RUN_FAILED
        return VERDICT_EXIT[self.verdict]


def load_criteria(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(read_text(path, "--criteria")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: expected a mapping with metrics/performance/observability/stability/custom"
        )
    known = {
        "name",
        "variable_files",
        "metrics",
        "performance",
        "observability",
        "stability",
        "custom",
        "run",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            f"{path}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    for section in ("metrics", "performance", "custom"):
        items = data.get(section) or []
        if not isinstance(items, list):
            raise InputError(f"{path}: field '{section}' must be a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise InputError(f"{path}: field '{section}[{i}]' needs a 'name'")
            if section != "custom" and item.get("direction") not in ("minimize", "maximize"):
                raise InputError(
                    f"{path}: field '{section}[{i}].direction' must be minimize or maximize"
                )
            if section == "custom" and not isinstance(item.get("command"), str):
                raise InputError(f"{path}: field 'custom[{i}].command' must be a command string")
    return data


def load_metrics(path: Path, flag: str) -> dict[str, Any]:
    try:
        data = json.loads(read_text(path, flag))
    except json.JSONDecodeError as exc:
        raise InputError(f"{flag} {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{flag} {path}: expected a JSON object of metric name -> value")
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def judge_numeric(
    spec: dict[str, Any], kind: str, metrics: dict[str, Any], base: dict[str, Any]
) -> CriterionResult:
    name, direction = spec["name"], spec["direction"]
    threshold = _number(spec.get("threshold"))
    res = CriterionResult(name, kind, "pass", threshold=threshold)
    value = _number(metrics.get(name))
    if name not in metrics or value is None:
        res.status, res.message = "fail", f"{name} missing from the metrics or not a number"
        return res
    res.value = value
    if not math.isfinite(value):
        res.status, res.message = "fail", f"{name} is {value}"
        return res
    better = (lambda a, b: a < b) if direction == "minimize" else (lambda a, b: a > b)
    if threshold is not None and better(threshold, value):
        res.status = "fail"
        res.message = f"{name} {value:.6g} misses the threshold {threshold:.6g} ({direction})"
        return res
    b = _number(base.get(name))
    if b is None or not math.isfinite(b):
        res.message = (
            "within threshold; no baseline to compare"
            if threshold is not None
            else "no baseline to compare"
        )
        return res
    res.baseline = b
    tol = max(
        float(spec.get("min_delta", 0.0)), abs(b) * float(spec.get("max_regression_pct", 0.0)) / 100
    )
    delta = value - b
    if better(value, b) and abs(delta) > tol:
        res.status = "improved"
    elif better(b, value) and abs(delta) > tol:
        res.status = "regressed"
    res.message = (
        f"{name} {value:.6g} vs baseline {b:.6g} (delta {delta:+.4g}, tolerance {tol:.4g})"
    )
    return res


def _finite_all(value: Any) -> bool:
    if isinstance(value, list):
        return all(_finite_all(v) for v in value)
    n = _number(value)
    return n is None or math.isfinite(n)


def evaluate_criteria(
    crit: dict[str, Any],
    metrics: dict[str, Any],
    base: dict[str, Any],
    cwd: Path,
    log_dir: Path,
    series: dict[str, list[float]] | None = None,
) -> list[CriterionResult]:
    """Every criterion's result; ``series`` (whole curves read from logs) is what
    ``stability.no_nan`` checks when it holds the key, else the value in ``metrics``."""
    series = series or {}
    out = [judge_numeric(s, "metric", metrics, base) for s in crit.get("metrics") or []]
    out += [judge_numeric(s, "performance", metrics, base) for s in crit.get("performance") or []]
    for key in (crit.get("observability") or {}).get("required_keys") or []:
        present = key in metrics
        out.append(CriterionResult(f"logged:{key}", "observability", "pass" if present else "fail",
                                   message="present" if present else f"required key {key!r} missing"))  # fmt: skip
    no_nan = (crit.get("stability") or {}).get("no_nan")
    if no_nan:
        keys = list(metrics) if no_nan is True else list(no_nan)
        for key in keys:
            ok = key in metrics and _finite_all(series.get(key, metrics[key]))
            msg = "finite" if ok else ("missing" if key not in metrics else "contains NaN/Inf")
            out.append(
                CriterionResult(f"finite:{key}", "stability", "pass" if ok else "fail", message=msg)
            )
    for i, spec in enumerate(crit.get("custom") or []):
        res = run_limited(
            spec["command"], cwd, log_dir / f"custom-{i}.log", float(spec.get("timeout_s", 600))
        )
        out.append(CriterionResult(spec["name"], "custom", "pass" if res.ok else "fail",
                                   message=res.reason or f"ok in {res.duration_s:.2f} s"))  # fmt: skip
    return out


def verdict(results: list[CriterionResult]) -> tuple[str, str]:
    fails = [r.name for r in results if r.status == "fail"]
    improved = [r.name for r in results if r.status == "improved"]
    regressed = [r.name for r in results if r.status == "regressed"]
    if fails:
        return "rollback", f"failed: {', '.join(fails)}"
    if improved and not regressed:
        return "commit", f"improved: {', '.join(improved)}"
    if improved:
        return (
            "accept_with_note",
            f"trade-off: improved {', '.join(improved)}; regressed {', '.join(regressed)}",
        )
    if regressed:
        return "rollback", f"regressed: {', '.join(regressed)}; nothing improved"
    return "accept_with_note", "neutral: every criterion passes, none moved"


def judge_iteration(
    criteria_path: Path, metrics_path: Path, baseline_path: Path | None, repo_path: Path,
    message: str = "", use_git: bool = True,
) -> IterateResult:  # fmt: skip
    crit = load_criteria(criteria_path)
    metrics = load_metrics(metrics_path, "--metrics")
    if not use_git and not Path(repo_path).exists():
        raise InputError(f"--repo {repo_path} does not exist")
    try:
        repo = gitops.open_repo(repo_path)
    except InputError:
        if use_git:
            raise
        return judge_outside_git(crit, metrics, baseline_path, Path(repo_path))
    name = str(crit.get("name") or "default")
    run_dir = records.area_dir(repo, "iterate") / name
    run_dir.mkdir(parents=True, exist_ok=True)
    with records.run_lock(run_dir):
        return judge_locked(crit, metrics, baseline_path, repo, name, run_dir, message, use_git)


def judge_outside_git(
    crit: dict[str, Any], metrics: dict[str, Any], baseline_path: Path | None, root: Path
) -> IterateResult:
    """``--no-git`` where there is no git repository: the verdict only. Nothing is recorded, so
    the next judge needs ``--baseline`` to compare against."""
    base = load_metrics(baseline_path, "--baseline") if baseline_path is not None else {}
    with tempfile.TemporaryDirectory() as tmp:
        results = evaluate_criteria(crit, metrics, base, root.resolve(), Path(tmp), None)
    v, note = verdict(results)
    notes = [f"{root} is not in a git repository: verdict only, nothing recorded"]
    return IterateResult(v, results, note, git=False, notes=notes)


def judge_locked(
    crit: dict[str, Any], metrics: dict[str, Any], baseline_path: Path | None, repo: Any,
    name: str, run_dir: Path, message: str, use_git: bool, ran: Any = None,
) -> IterateResult:  # fmt: skip
    """Judge ``metrics`` and apply the git action, holding the lock on ``run_dir``.

    ``ran`` (an :class:`toolkit.loops.iterate_run.Ran`) is what ``iterate run`` measured:
    its failures become criteria, its curves feed ``no_nan``, and files its commands created
    are outputs, never the change's (never committed, never removed).
    """
    recovered = recover_iteration(repo, run_dir) if use_git else None
    accepted = run_dir / "accepted_metrics.json"
    if baseline_path is not None:
        base = load_metrics(baseline_path, "--baseline")
    else:
        base = records.read_json(accepted) if accepted.exists() else {}
    snapshot_file = run_dir / "snapshot.json"
    notes = [recovered] if recovered else []
    variable = list(crit.get("variable_files") or ["**"])
    root = gitops.root_of(repo)
    if snapshot_file.exists():
        snap = records.read_json(snapshot_file)
        preexisting = set(snap["untracked"])
        rewritten = set() if ran is None else set(ran.rewritten)
        notes += [line for line in gitops.user_file_changes(root, snap.get("signatures") or {})
                  if line.split(": ", 1)[0] not in rewritten]  # fmt: skip
    else:
        # no snapshot yet: every untracked file is the user's (never committed, never moved)
        loose = gitops.untracked(gitops.status(repo))
        preexisting = set(loose)
        if not use_git:  # the baseline judge marks the start: record the user's files now
            write_snapshot(repo, run_dir)
        elif preexisting:
            notes.append(
                f"no snapshot of the user's files yet: all {len(preexisting)} untracked file(s) "
                "are treated as the user's (not committed, not moved); run 'iterate judge --no-git' "
                "on the baseline before changing code so that new files a change adds are its own"
            )
    if ran is not None:  # what the run's commands wrote is output, not the change
        preexisting |= set(ran.outputs) | set(ran.rewritten)
    comp = gitops.compliance(gitops.status(repo), preexisting, variable, [])
    with tempfile.TemporaryDirectory() as tmp:
        results = [] if ran is None else list(ran.failures)
        if ran is None or not ran.failures:
            series = None if ran is None else ran.series
            results += evaluate_criteria(crit, metrics, base, root, Path(tmp), series)
    if comp.violations:
        results.append(
            CriterionResult("scope", "scope", "fail", message="; ".join(comp.violations))
        )
    v, note = verdict(results)
    out = IterateResult(v, results, note, git=use_git, notes=notes,
                        run=None if ran is None else ran.summary())  # fmt: skip
    if not use_git:
        return out
    n = len(list((run_dir / "trash").glob("*"))) if (run_dir / "trash").exists() else 0
    lines = [f"{r.status:9s} {r.name}: {r.message}" for r in results]
    judge_id = f"{name}-{n + 1:03d}-{int(time.time())}"
    journal = {
        "id": judge_id, "verdict": v, "paths": comp.paths, "base": gitops.head_sha(repo),
        "preexisting": sorted(preexisting), "variable": variable,
        "trash": str(run_dir / "trash" / f"judge-{n + 1:03d}"),
        "accepted": {k: x for k, x in metrics.items() if _number(x) is not None},
        "message": f"iterate {name}: {v}\n\n{message.strip() or '(no message)'}\n\n{note}\n\n"
        + "\n".join(lines) + f"\n\nLabcoat-Iterate: {judge_id}\n",
    }  # fmt: skip
    records.write_json(run_dir / "journal.json", journal)
    apply_action(repo, run_dir, journal, out)
    return out


def apply_action(
    repo: Any, run_dir: Path, journal: dict[str, Any], out: IterateResult | None = None
) -> None:
    """The journaled git action (commit or rollback) and the bookkeeping after it; idempotent."""
    trash = Path(journal["trash"])
    if journal["verdict"] == "rollback":
        rep = gitops.rollback(repo, set(journal["preexisting"]), journal["variable"], trash)
        if out is not None:
            out.rollback = {
                "restored": rep.restored,
                "removed": rep.removed,
                "kept": rep.kept,
                "trash": rep.trash,
            }
    else:
        head = gitops.head_sha(repo)
        if (
            head != journal["base"]
            and f"Labcoat-Iterate: {journal['id']}\n" in repo.head.commit.message
        ):
            sha = head  # committed before a crash
        elif journal["paths"]:
            sha = gitops.commit_paths(repo, journal["paths"], journal["message"])
        else:
            sha = None
            if out is not None:
                out.notes.append("nothing changed in the tree: no commit made")
        if out is not None:
            out.commit = sha
        records.write_json(run_dir / "accepted_metrics.json", journal["accepted"])
    write_snapshot(repo, run_dir)
    (run_dir / "journal.json").unlink(missing_ok=True)


def write_snapshot(repo: Any, run_dir: Path) -> None:
    """Record the untracked files now (the user's, for the next change) and their signatures."""
    loose = gitops.untracked(gitops.status(repo))
    sigs = gitops.signatures(gitops.root_of(repo), loose)
    records.write_json(run_dir / "snapshot.json", {"untracked": loose, "signatures": sigs})


def recover_iteration(repo: Any, run_dir: Path) -> str | None:
    """Finish a judge that was interrupted after its verdict (``journal.json`` present)."""
    path = run_dir / "journal.json"
    if not path.exists():
        return None
    journal = records.read_json(path)
    apply_action(repo, run_dir, journal)
    return f"recovered interrupted judge {journal['id']}: {journal['verdict']} completed"


def main_judge(args: Any) -> int:
    res = judge_iteration(
        args.criteria, args.metrics, args.baseline, args.repo, args.message, not args.no_git
    )
    return print_result(res, args.format)


def print_result(res: IterateResult, fmt: str) -> int:
    """Print an iterate verdict (table or JSON); return its exit code."""
    if fmt == "json":
        print_json(res)
        return res.exit_code

    def num(x: float | None) -> str:
        return "" if x is None else f"{x:.6g}"

    if res.run is not None:
        print(render_table(("command", "status", "seconds", "exit", "log"),
                           [(c["name"], c["status"], f"{c['duration_s']:.2f}", "" if c["exit_code"] is None else c["exit_code"], c["log"])
                            for c in res.run["commands"]]))  # fmt: skip
        print(f"run: {res.run['status']}\n")
    print(render_table(("criterion", "kind", "status", "value", "baseline", "threshold", "detail"),
                       [(r.name, r.kind, r.status, num(r.value), num(r.baseline), num(r.threshold), r.message)
                        for r in res.criteria]))  # fmt: skip
    print(f"\nverdict: {res.verdict} ({res.note})")
    if res.commit:
        print(f"committed {res.commit[:12]}")
    if res.rollback:
        print(
            f"rolled back: restored {len(res.rollback['restored'])}, removed {len(res.rollback['removed'])} (in {res.rollback['trash']})"
        )
    for n in res.notes:
        print(f"note: {n}")
    return res.exit_code
