"""Layer profiler on CPU: real hooks, real timings, checked against independently timed phases."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from toolkit.demo.train import build_spec
from toolkit.profiling.instruments.layer_profiler import LayerProfiler, TrainingStep, profile_layers
from toolkit.profiling.spec import batch_source

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_profile():
    torch.manual_seed(0)
    spec = build_spec(torch.device("cpu"))
    return profile_layers(
        spec.model, TrainingStep(spec, batch_source(spec)), steps=24, warmup_steps=3
    )


def test_model_forward_and_backward_match_the_timed_phases(demo_profile):
    result = demo_profile
    ph = result.phases_ms  # timed around the same hooked steps, independently of the hooks
    # the model is all of the forward phase but the loss, and all of the backward phase
    assert result.model_forward_ms == pytest.approx(ph["forward"], rel=0.10)
    assert result.model_backward_ms == pytest.approx(ph["backward"], rel=0.10)
    assert result.model_forward_ms + result.model_backward_ms == pytest.approx(
        result.step_ms - ph["data"] - ph["optimizer"], rel=0.10
    )


def test_self_times_add_up_to_the_model(demo_profile):
    result = demo_profile
    assert sum(r.self_forward_ms for r in result.rows) == pytest.approx(
        result.model_forward_ms, rel=1e-6
    )
    assert sum(r.self_backward_ms for r in result.rows) == pytest.approx(
        result.model_backward_ms, rel=1e-6
    )
    by_name = {r.name: r for r in result.rows}
    # every Linear in the demo has real forward and backward time; containers are looked through
    for name in ("blocks.0.attn.c_attn", "blocks.1.mlp.c_fc", "blocks.0.mlp.c_proj"):
        assert by_name[name].forward_ms > 0 and by_name[name].backward_ms > 0
    assert "blocks" not in by_name  # the ModuleList is never called
    assert by_name["wte"].backward_ms > 0  # input needs no grad: ends at its weight's accumulation
    assert result.overhead is not None and result.step_ms_without_hooks > 0


def test_a_slow_layer_is_found_in_forward_and_backward():
    class Slow(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            time.sleep(0.004)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            time.sleep(0.008)
            return g * 2

    class SlowLayer(nn.Module):
        def forward(self, x):
            return Slow.apply(x)

    model = nn.Sequential(nn.Linear(8, 8), SlowLayer(), nn.ReLU(inplace=True), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(4, 8)

    def step():
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    result = profile_layers(model, step, steps=6, warmup_steps=1, measure_overhead=False)
    rows = {r.name: r for r in result.rows}
    assert 3.5 < rows["1"].self_forward_ms < 12 and 7 < rows["1"].self_backward_ms < 20
    assert rows["0"].self_backward_ms < 2
    assert rows["2"].backward_ms is None  # in-place ReLU: not wrapped, said "not measured"
    assert max(result.rows, key=lambda r: r.self_share_of_step).name == "1"


def test_hooks_are_removed_and_outputs_unchanged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2))
    x = torch.randn(3, 4, requires_grad=True)
    ref = model(x)
    ref.sum().backward()
    ref_grad = x.grad.clone()
    x.grad = None
    prof = LayerProfiler(model, torch.device("cpu")).start()
    out = model(x)
    out.sum().backward()
    prof.end_step()
    prof.stop()
    assert torch.equal(out, ref) and torch.equal(x.grad, ref_grad)
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_cli_json():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit.profiling.layer_profiler",
            "run",
            "--steps",
            "4",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["clock"] == "perf_counter" and r["steps"] == 4
    assert {row["name"] for row in r["rows"]} >= {"(model)", "wte", "lm_head", "blocks.0.attn"}
