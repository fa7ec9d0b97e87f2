"""The contract between user code and the runtime validator.

``--entry module:function`` (or ``path/to/file.py:function``) names a function that returns a
:class:`TrainSpec`, or a dict with the same keys. It is called with the ``torch.device`` the runner
chose when it takes one parameter, with no arguments otherwise.

Required: ``model``, ``optimizer``, ``batches``, ``loss_fn``. Optional: ``eval_fn``,
``infer_fn``, ``make_model``, ``forward_fn``, ``optimizer_step``, ``tokens_per_step``,
``dtype``, ``name``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toolkit.errors import InputError
from toolkit.profiling.l0_args import DTYPES

Batch = Any
DEMO_ENTRY = "toolkit.demo.train:build_spec"


@dataclass
class TrainSpec:
    """What the runtime validator needs to train, checkpoint, infer and evaluate a model.

    - ``model``: the module to train, already on its device.
    - ``optimizer``: a ``torch.optim.Optimizer`` over the model's parameters.
    - ``batches``: an iterable of batches, or a zero-argument callable returning the next batch.
    - ``loss_fn(model, batch) -> scalar tensor``: forward pass and loss.
    - ``eval_fn(model) -> {metric: float}``: evaluation; run under ``no_grad`` in eval mode.
    - ``infer_fn(model) -> Any``: inference on a sample (e.g. generated text); eval mode.
    - ``make_model() -> nn.Module``: builds a fresh, untrained model for the reload check.
      Without it the runner copies the model and overwrites every tensor before loading.
    - ``forward_fn(model, batch) -> Tensor``: the outputs compared after reload. Default:
      ``model(batch)`` for a tensor, ``model(batch[0])`` for a tuple/list, ``model(**batch)``
      for a dict.
    - ``optimizer_step()``: replaces ``optimizer.step()`` (clipping, GradScaler, scheduler).
    - ``tokens_per_step``: tokens (or samples) one step processes; inferred from the batch's
      integer tensor when omitted.
    - ``dtype``: compute dtype for the peak FLOPS lookup (``fp32``, ``tf32``, ``bf16``, ``fp16``,
      ``fp8``); inferred from the parameters when omitted.
    - ``save_checkpoint(path)`` / ``load_checkpoint(path)``: the training code's own resume (model,
      optimizer, scheduler, RNG and data position), tested by ``--resume-check``. Default: the
      model's and optimizer's state_dicts only.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    batches: Iterable[Batch] | Callable[[], Batch]
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor]
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None
    infer_fn: Callable[[nn.Module], Any] | None = None
    make_model: Callable[[], nn.Module] | None = None
    forward_fn: Callable[[nn.Module, Batch], torch.Tensor] | None = None
    optimizer_step: Callable[[], None] | None = None
    tokens_per_step: int | None = None
    dtype: str | None = None
    name: str = "user model"
    save_checkpoint: Callable[[Path], None] | None = None
    load_checkpoint: Callable[[Path], None] | None = None


_REQUIRED = ("model", "optimizer", "batches", "loss_fn")
_CALLABLES = (
    "loss_fn",
    "eval_fn",
    "infer_fn",
    "make_model",
    "forward_fn",
    "optimizer_step",
    "save_checkpoint",
    "load_checkpoint",
)


def batch_source(spec: TrainSpec) -> Callable[[], Batch]:
    """A zero-argument callable yielding the next batch; an exhausted iterable restarts."""
    if callable(spec.batches) and not isinstance(spec.batches, Iterable):
        return spec.batches
    source = spec.batches
    state: dict[str, Iterator[Batch]] = {"it": iter(source)}

    def next_batch() -> Batch:
        try:
            return next(state["it"])
        except StopIteration:
            state["it"] = iter(source)
            try:
                return next(state["it"])
            except StopIteration:
                raise InputError("spec.batches is empty: it yielded no batch") from None

    return next_batch


def validate_spec(obj: Any, where: str) -> TrainSpec:
    """Turn what an entry returned into a checked :class:`TrainSpec`.

    ``where`` names the entry in error messages (e.g. ``"--entry mypkg.train:build"``).
    """
    if isinstance(obj, dict):
        known = {f.name for f in dataclasses.fields(TrainSpec)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise InputError(
                f"{where} returned unknown key(s) {unknown}; expected keys from {sorted(known)}"
            )
        missing = [k for k in _REQUIRED if k not in obj]
        if missing:
            raise InputError(
                f"{where} returned a dict without required key(s) {missing}; "
                f"required: {list(_REQUIRED)}"
            )
        obj = TrainSpec(**obj)
    if not isinstance(obj, TrainSpec):
        raise InputError(
            f"{where} returned {type(obj).__name__}; expected a toolkit.profiling.spec.TrainSpec "
            f"or a dict with keys {list(_REQUIRED)}"
        )
    if not isinstance(obj.model, nn.Module):
        raise InputError(f"{where}: 'model' is {type(obj.model).__name__}; expected nn.Module")
    if not isinstance(obj.optimizer, torch.optim.Optimizer):
        raise InputError(
            f"{where}: 'optimizer' is {type(obj.optimizer).__name__}; expected torch.optim.Optimizer"
        )
    if not (callable(obj.batches) or isinstance(obj.batches, Iterable)):
        raise InputError(
            f"{where}: 'batches' is {type(obj.batches).__name__}; "
            "expected an iterable of batches or a callable returning a batch"
        )
    for key in _CALLABLES:
        value = getattr(obj, key)
        if value is not None and not callable(value):
            raise InputError(f"{where}: '{key}' is {type(value).__name__}; expected a callable")
    if obj.tokens_per_step is not None and (
        not isinstance(obj.tokens_per_step, int) or obj.tokens_per_step < 1
    ):
        raise InputError(
            f"{where}: 'tokens_per_step' must be a positive int, got {obj.tokens_per_step!r}"
        )
    if obj.dtype is not None and obj.dtype not in DTYPES:
        raise InputError(f"{where}: 'dtype' is {obj.dtype!r}; expected one of {list(DTYPES)}")
    return obj


def _import_target(entry: str) -> Callable[..., Any]:
    module_name, sep, attr = entry.rpartition(":")
    if not sep or not module_name or not attr:
        raise InputError(
            f"--entry {entry!r}: expected 'module:function' or 'path/to/file.py:function'"
        )
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise InputError(f"--entry {entry!r}: file {path} does not exist")
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            sys.path.insert(0, str(path.resolve().parent))
            mod_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except InputError:
        raise
    except Exception as exc:  # the user's module failed to import: report, don't crash
        raise InputError(
            f"--entry {entry!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    target = getattr(module, attr, None)
    if target is None:
        raise InputError(f"--entry {entry!r}: module {module_name!r} has no attribute {attr!r}")
    if not callable(target):
        raise InputError(f"--entry {entry!r}: {attr!r} is {type(target).__name__}, not callable")
    return target


def load_entry(entry: str, device: torch.device) -> TrainSpec:
    """Import ``module:function``, call it and validate what it returns."""
    target = _import_target(entry)
    try:
        params = inspect.signature(target).parameters
        takes_device = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in params.values()
        )
    except (TypeError, ValueError):
        takes_device = False
    try:
        obj = target(device) if takes_device else target()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"--entry {entry!r}: calling it raised {type(exc).__name__}: {exc}"
        ) from None
    return validate_spec(obj, f"--entry {entry!r}")


def parse_device(text: str) -> torch.device:
    """``--device``: auto (cuda if available), cpu, cuda or cuda:N."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise InputError(f"--device {text!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {text}: CUDA is not available on this machine")
    return dev


def add_entry_arguments(parser: Any) -> None:
    """``--entry`` and ``--device`` for a command that runs a TrainSpec (default: the demo)."""
    parser.add_argument(
        "--entry",
        metavar="MODULE:FUNCTION",
        default=DEMO_ENTRY,
        help="a function returning a TrainSpec (default: the built-in example)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)"
    )


def load_from_args(args: Any) -> TrainSpec:
    """The TrainSpec named by ``--entry``, built for ``--device``."""
    return load_entry(args.entry, parse_device(args.device))
