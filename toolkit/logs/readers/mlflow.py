"""MLflow file stores (``mlruns/``), read with MLflow's own ``FileStore`` (optional extra ``mlflow``).

PATH is the store root (``mlruns/``, holds ``.trash``), an experiment folder
(``mlruns/<experiment id>/``) or a run folder (``mlruns/<experiment id>/<run id>/``). For a
store or an experiment holding several runs, the most recently started active run is read
and a warning names it and the others. Steps are MLflow's ``step``; values are kept as logged
(NaN included). MLflow 3 keeps the file store in maintenance mode behind
``MLFLOW_ALLOW_FILE_STORE``; it is set only while reading. Nothing in the store is written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.series import Run, build_run


def is_mlflow_store(path: Path) -> bool:
    """A store root, an experiment folder in one, or a run folder in one."""
    if not path.is_dir():
        return False
    return any((p / ".trash").is_dir() for p in (path, path.parent, path.parent.parent))


def _store_root(path: Path) -> tuple[Path, str | None, str | None]:
    """(store root, experiment id or None, run id or None) for ``path``."""
    if (path / ".trash").is_dir():
        return path, None, None
    if (path.parent / ".trash").is_dir():
        return path.parent, path.name, None
    if (path.parent.parent / ".trash").is_dir():
        return path.parent.parent, path.parent.name, path.name
    raise InputError(f"{path}: not inside an MLflow file store (no .trash folder beside mlruns/)")


@contextlib.contextmanager
def _file_store_allowed() -> Iterator[None]:
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old


def read_mlflow(path: Path) -> Run:
    try:
        from mlflow.entities import ViewType
        from mlflow.exceptions import MlflowException
        from mlflow.store.tracking.file_store import FileStore
    except ImportError:
        raise InputError(
            "reading an MLflow store needs MLflow: pip install 'labcoat[mlflow]' (mlflow-skinny)"
        ) from None
    root, exp_id, run_id = _store_root(path.resolve())
    warnings: list[str] = []
    with _file_store_allowed():
        try:
            store = FileStore(str(root))
            if run_id is None:
                exp_ids = (
                    [exp_id] if exp_id else [e.experiment_id for e in store.search_experiments()]
                )
                runs = store.search_runs(exp_ids, "", ViewType.ACTIVE_ONLY, max_results=10_000)
                if not runs:
                    raise InputError(f"{path}: the MLflow store holds no active run")
                runs = sorted(runs, key=lambda r: r.info.start_time or 0, reverse=True)
                run_id = runs[0].info.run_id
                if len(runs) > 1:
                    others = ", ".join(r.info.run_id for r in runs[1:6])
                    warnings.append(
                        f"{path}: {len(runs)} runs; read the latest, {run_id} ({runs[0].info.run_name}); "
                        f"others: {others}{' ...' if len(runs) > 6 else ''} (pass a run folder to choose)"
                    )
            mrun = store.get_run(run_id)
            columns = {}
            for key in sorted(mrun.data.metrics):
                hist = store.get_metric_history(run_id, key)
                steps = np.fromiter((m.step for m in hist), dtype=np.int64, count=len(hist))
                values = np.fromiter((m.value for m in hist), dtype=np.float64, count=len(hist))
                columns[key] = (steps, values)
        except MlflowException as exc:
            raise InputError(f"{path}: MLflow cannot read the store: {exc.message}") from None
    if not columns:
        raise InputError(f"{path}: MLflow run {run_id} logged no metrics")
    return build_run(path, "mlflow", columns, warnings)
