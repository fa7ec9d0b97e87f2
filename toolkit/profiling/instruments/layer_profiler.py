"""Layer profiler: forward AND backward time per module, call counts, share of step time.

Module hooks mark each module's forward (pre/post hooks) and backward. Backward starts when the
gradient with respect to the module's output reaches the autograd node that produced it (a pre-hook
on ``output.grad_fn``) and ends when the gradient with respect to each input *for this use* is
computed: the forward pre-hook hands the module ``x.view_as(x)`` and a post-hook on that view's node
marks the end. (torch's full backward hooks do the same with Python autograd Functions and cost
about 8x more.) A module none of whose inputs needs a gradient (an embedding, the root model) ends
when the last of its parameters' gradients is accumulated. A module that modifies its input in
place (``inplace=True``) is not wrapped: its backward is "not measured". Times are inclusive per
module; *self* time subtracts the children's, so self times add up to the root's time.

Clocks: CUDA events on a GPU (resolved after each step, no sync inside hooks); ``perf_counter`` on
CPU, where ops run synchronously. The hooks' cost is measured, not assumed: the same number of steps
is timed with and without hooks, and the overhead is reported with the result.

    python -m toolkit.profiling.layer_profiler run [--entry MODULE:FUNCTION] [--steps N] [--top K]
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from toolkit import cli
from toolkit.profiling.spec import add_entry_arguments, batch_source, load_from_args

PROG = "python -m toolkit.profiling.layer_profiler"


@dataclass
class LayerRow:
    """One module, averaged per profiled step. Times in milliseconds."""

    name: str  # qualified name; "" is the root model, shown as "(model)"
    type: str
    calls_per_step: float
    forward_ms: float  # inclusive
    backward_ms: float | None  # inclusive; None: not measured (in-place module)
    self_forward_ms: float  # minus children
    self_backward_ms: float | None
    self_share_of_step: float  # (self fwd + self bwd) / step time, 0..1


@dataclass
class LayerProfile:
    steps: int
    clock: str  # "cuda events" or "perf_counter"
    step_ms: float  # mean step time with hooks
    step_ms_without_hooks: float | None  # mean step time of the same number of steps without hooks
    overhead: float | None  # (median with - median without) / median without, interleaved rounds
    model_forward_ms: float  # root module, inclusive
    model_backward_ms: float
    rows: list[LayerRow] = field(default_factory=list)
    phases_ms: dict[str, float] = field(
        default_factory=dict
    )  # hooked steps, when the step times them
    notes: list[str] = field(default_factory=list)


def _tensors(out: Any) -> list[torch.Tensor]:
    """Tensors in a module's output: a tensor, a tuple/list, a dict or an HF ModelOutput."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, list | tuple):
        return [t for t in out if isinstance(t, torch.Tensor)]
    return []


def _cuda_mark() -> Any:
    ev = torch.cuda.Event(enable_timing=True)
    ev.record()
    return ev


class _Clock:
    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        # a plain function on the hot path: hooks call it several times per module per step
        self.mark: Callable[[], Any] = _cuda_mark if self.cuda else time.perf_counter

    def ms(self, a: Any, b: Any) -> float:
        return a.elapsed_time(b) if self.cuda else (b - a) * 1e3


class LayerProfiler:
    """Hooks every module of ``model``; ``start()``, run steps, ``end_step()`` after each, ``stop()``."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.clock = model, _Clock(device)
        self.modules = dict(model.named_modules())
        self.children = {
            n: [f"{n}.{c}" if n else c for c, _ in m.named_children()]
            for n, m in self.modules.items()
        }
        self.params = {n: list(m.parameters()) for n, m in self.modules.items()}
        self._handles: list[Any] = []
        self.bwd_unmeasured: set[str] = set()
        self._calls: dict[str, list[list[Any]]] = {n: [] for n in self.modules}
        self._reset_step()
        self.fwd: dict[str, list[float]] = defaultdict(list)  # per step, inclusive ms
        self.bwd: dict[str, list[float]] = defaultdict(list)
        self.calls: dict[str, list[int]] = defaultdict(list)
        self.steps = 0

    def _reset_step(self) -> None:
        # per module, per call: [fwd start, fwd end, bwd start, bwd end, inputs need no grad]
        # lists are cleared in place: the hooks hold references to them
        for calls in self._calls.values():
            calls.clear()
        self._unwrapped: set[str] = set()  # in-place modules: backward end not observable
        self._acc: dict[int, Any] = {}  # id(param) -> mark at its last grad accumulation

    # ------------------------------------------------------------------ hooks
    def _hooks_for(self, name: str, mod: nn.Module) -> None:
        inplace = bool(getattr(mod, "inplace", False))
        calls = self._calls[name]
        mark = self.clock.mark
        grad_enabled = torch.is_grad_enabled

        def fpre(m: nn.Module, args: tuple) -> tuple | None:
            rec = [mark(), None, None, None, False]
            calls.append(rec)
            if not grad_enabled():
                return None
            new = None
            for i, a in enumerate(args):
                if isinstance(a, torch.Tensor) and a.requires_grad:
                    if inplace:
                        self._unwrapped.add(name)
                        return None
                    if new is None:
                        new = list(args)
                    view = a.view_as(a)  # this use's gradient passes through the view's node
                    view.grad_fn.register_hook(lambda gi, go: rec.__setitem__(3, mark()))
                    new[i] = view
            if new is None:
                rec[4] = True
                return None
            return tuple(new)

        def start_bwd(rec: list) -> None:
            if rec[2] is None:  # several outputs: the first gradient to arrive starts it
                rec[2] = mark()

        def fpost(m: nn.Module, args: tuple, out: Any) -> None:
            for rec in reversed(calls):  # innermost open call (re-entrant modules)
                if rec[1] is None:
                    break
            rec[1] = mark()
            for t in (out,) if isinstance(out, torch.Tensor) else _tensors(out):
                fn = t.grad_fn
                if fn is not None:
                    fn.register_prehook(lambda go: start_bwd(rec))

        self._handles += [mod.register_forward_pre_hook(fpre), mod.register_forward_hook(fpost)]

    def start(self) -> LayerProfiler:
        mark = self.clock.mark
        for name, mod in self.modules.items():
            self._hooks_for(name, mod)
        seen: set[int] = set()
        for p in self.model.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                self._handles.append(
                    p.register_post_accumulate_grad_hook(
                        lambda t: self._acc.__setitem__(id(t), mark())
                    )
                )
        return self

    def stop(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    # ------------------------------------------------------------------ per step
    def end_step(self) -> None:
        """Resolve this step's marks into per-module times (syncs the GPU once)."""
        if self.clock.cuda:
            torch.cuda.synchronize()
        ms = self.clock.ms
        for name in self.modules:
            calls = self._calls[name]
            self.calls[name].append(len(calls))
            self.fwd[name].append(sum(ms(r[0], r[1]) for r in calls if r[1] is not None))
            if name in self._unwrapped:
                self.bwd_unmeasured.add(name)
            total = 0.0
            for start, end, no_grad_input in ((r[2], r[3], r[4]) for r in calls):
                if start is None:
                    continue  # output needed no gradient (e.g. an eval forward)
                if no_grad_input:  # ends when its parameters' gradients are all accumulated
                    ends = [self._acc[id(p)] for p in self.params[name] if id(p) in self._acc]
                    end = max(ends, key=lambda e: ms(start, e)) if ends else None
                if end is not None:
                    total += max(0.0, ms(start, end))
            self.bwd[name].append(total)
        self.steps += 1
        self._reset_step()

    def timed_children(self, name: str) -> list[str]:
        """Nearest descendants that were called: a container (ModuleList) is looked through."""
        out = []
        for c in self.children[name]:
            out += [c] if any(self.calls[c]) else self.timed_children(c)
        return out

    def rows(self, step_ms: float) -> list[LayerRow]:
        def mean(d: dict[str, list[float]], n: str) -> float:
            return statistics.fmean(d[n]) if d[n] else 0.0

        out = []
        for name, mod in self.modules.items():
            f, b = mean(self.fwd, name), mean(self.bwd, name)
            kids = self.timed_children(name)
            sf = f - sum(mean(self.fwd, c) for c in kids)
            sb = b - sum(mean(self.bwd, c) for c in kids)
            if name in self.bwd_unmeasured:
                b = sb = None
            calls = statistics.fmean(self.calls[name]) if self.calls[name] else 0.0
            if calls == 0:
                continue
            out.append(
                LayerRow(
                    name=name or "(model)",
                    type=type(mod).__name__,
                    calls_per_step=calls,
                    forward_ms=f,
                    backward_ms=b,
                    self_forward_ms=sf,
                    self_backward_ms=sb,
                    self_share_of_step=(sf + (sb or 0.0)) / step_ms if step_ms > 0 else 0.0,
                )
            )
        return out


def profile_layers(
    model: nn.Module,
    step: Callable[[], None],
    steps: int = 20,
    warmup_steps: int = 3,
    measure_overhead: bool = True,
    rounds: int = 4,
) -> LayerProfile:
    """Profile ``steps`` calls of ``step()`` (one full training step each) on ``model``.

    After ``warmup_steps`` unhooked steps, ``rounds`` rounds each time a chunk of steps without
    hooks (if ``measure_overhead``) and then the same number with hooks: interleaving keeps drift
    (other load, clocks) from landing on one side. Overhead compares the medians.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    def timed(n: int, after: Callable[[], None] = lambda: None) -> list[float]:
        out = []
        for _ in range(n):
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            out.append((time.perf_counter() - t0) * 1e3)
            after()
        return out

    timed(warmup_steps)
    prof = LayerProfiler(model, device)
    plain: list[float] = []
    hooked: list[float] = []
    hooked_phases: dict[str, list[float]] = defaultdict(list)
    chunk = max(1, -(-steps // max(1, rounds)))
    while len(hooked) < steps:
        n = min(chunk, steps - len(hooked))
        if measure_overhead:
            plain += timed(n)
        recorded = getattr(step, "phases", None)  # a TrainingStep times its phases
        before = {k: len(v) for k, v in recorded.items()} if recorded else {}
        prof.start()
        try:
            hooked += timed(n, after=prof.end_step)
        finally:
            prof.stop()
        for k, v in (recorded or {}).items():
            hooked_phases[k] += v[before[k] :]
    step_ms = statistics.fmean(hooked)
    without = statistics.median(plain) if plain else None
    phases = {k: statistics.fmean(v) for k, v in hooked_phases.items() if v}
    result = LayerProfile(
        steps=steps,
        clock="cuda events" if device.type == "cuda" else "perf_counter",
        step_ms=step_ms,
        step_ms_without_hooks=statistics.fmean(plain) if plain else None,
        overhead=(statistics.median(hooked) - without) / without if without else None,
        model_forward_ms=statistics.fmean(prof.fwd[""]),
        model_backward_ms=statistics.fmean(prof.bwd[""]),
        rows=prof.rows(step_ms),
        phases_ms=phases,
    )
    outside = step_ms - result.model_forward_ms - result.model_backward_ms
    result.notes.append(
        f"outside the model's forward/backward: {outside:.3g} ms per step "
        "(batch fetch, loss, optimizer step, Python between modules)"
    )
    return result


def render(p: LayerProfile, top: int = 10) -> str:
    rows = sorted(p.rows, key=lambda r: -r.self_share_of_step)[:top]

    def ms(v: float | None) -> str:
        return "not measured" if v is None else f"{v:.3f}"

    table = cli.render_table(
        ("module", "type", "calls", "self fwd ms", "self bwd ms", "share of step", "incl fwd ms", "incl bwd ms"),
        [
            (r.name, r.type, f"{r.calls_per_step:g}", ms(r.self_forward_ms), ms(r.self_backward_ms),
             f"{r.self_share_of_step:.1%}", ms(r.forward_ms), ms(r.backward_ms))
            for r in rows
        ],
    )  # fmt: skip
    overhead = (
        "not measured" if p.overhead is None
        else f"{p.overhead:+.1%} of the median step (mean {p.step_ms_without_hooks:.3g} ms without hooks, {p.step_ms:.3g} ms with)"
    )  # fmt: skip
    head = (
        f"layer profile over {p.steps} steps ({p.clock}); step {p.step_ms:.3g} ms with hooks; "
        f"model forward {p.model_forward_ms:.3g} ms, backward {p.model_backward_ms:.3g} ms\n"
        f"profiler overhead on step time: {overhead}\n"
    )
    if p.phases_ms:
        head += (
            "step phases: " + ", ".join(f"{k} {v:.3g} ms" for k, v in p.phases_ms.items()) + "\n"
        )
    return (
        head
        + f"top {len(rows)} modules by self time:\n"
        + table
        + "".join(f"\nnote: {n}" for n in p.notes)
    )


def build_parser() -> cli.Parser:
    p = cli.Parser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog="exit codes: 0 ok, 1 failed step, 2 usage error",
    )
    sub = p.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="profile training steps of an --entry spec per module")
    add_entry_arguments(run)
    run.add_argument(
        "--steps",
        metavar="N",
        type=cli.positive_int("--steps"),
        default=20,
        help="steps profiled with hooks, and again without for the overhead (default: 20)",
    )
    run.add_argument(
        "--warmup-steps",
        metavar="N",
        type=cli.non_negative_int("--warmup-steps"),
        default=3,
        help="unprofiled steps first (default: 3)",
    )
    run.add_argument(
        "--top",
        metavar="K",
        type=cli.positive_int("--top"),
        default=10,
        help="modules shown in the table, by self time (default: 10; JSON has all)",
    )
    cli.add_format_flag(run)
    return p


PHASES = ("data", "forward", "backward", "optimizer")


class TrainingStep:
    """One full step of a TrainSpec, the sequence the runtime validator times, callable.

    Appends per-phase wall ms to ``phases``: ``data`` (batch fetch), ``forward`` (loss_fn: the
    model's forward and the loss), ``backward``, ``optimizer`` (step + zero_grad). On CUDA each
    phase boundary synchronizes, so phases are exact at a small cost.
    """

    def __init__(self, spec: Any, next_batch: Callable[[], Any]) -> None:
        self.spec, self.next_batch = spec, next_batch
        self.phases: dict[str, list[float]] = {p: [] for p in PHASES}
        device = next((p.device for p in spec.model.parameters()), torch.device("cpu"))
        self.sync = (
            (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        )

    def __call__(self) -> None:
        spec, sync = self.spec, self.sync
        marks = [time.perf_counter()]
        batch = self.next_batch()
        sync()
        marks.append(time.perf_counter())
        loss = spec.loss_fn(spec.model, batch)
        sync()
        marks.append(time.perf_counter())
        loss.backward()
        sync()
        marks.append(time.perf_counter())
        (spec.optimizer_step or spec.optimizer.step)()
        spec.optimizer.zero_grad(set_to_none=True)
        sync()
        marks.append(time.perf_counter())
        for name, a, b in zip(PHASES, marks, marks[1:], strict=False):
            self.phases[name].append((b - a) * 1e3)


def main(argv: Sequence[str] | None = None) -> int:

    args = build_parser().parse_args(argv)
    spec = load_from_args(args)
    spec.model.train()
    result = profile_layers(
        spec.model, TrainingStep(spec, batch_source(spec)), args.steps, max(args.warmup_steps, 0)
    )
    if args.format == "json":
        cli.print_json(result)
    else:
        print(render(result, args.top))
    return cli.EXIT_OK
