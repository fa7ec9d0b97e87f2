"""Memory profiler: the CUDA path through a fake caching allocator with torch's real stat names,
the CPU path for real (process RSS)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from toolkit.profiling.instruments.memory_profiler import GIB, MemoryProfiler

ROOT = Path(__file__).resolve().parents[2]
MB = 1024**2


class FakeAllocator:
    """Keeps the counters ``torch.cuda.memory_stats`` reports, under the same key names."""

    def __init__(self) -> None:
        self.allocated = self.peak_allocated = 0
        self.reserved = self.peak_reserved = 0
        self.inactive = 0
        self.retries = 3  # from before the window: must not be counted
        self.ooms = 1
        self.history: list[object] = []

    def alloc(self, nbytes: int, split_waste: int = 0) -> None:
        self.allocated += nbytes
        self.inactive += split_waste
        self.reserved = max(self.reserved, self.allocated + self.inactive)
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def free(self, nbytes: int, split_waste: int = 0) -> None:
        self.allocated -= nbytes
        self.inactive += split_waste

    def memory_stats(self, device=None) -> dict[str, int]:
        return {
            "allocated_bytes.all.current": self.allocated,
            "allocated_bytes.all.peak": self.peak_allocated,
            "reserved_bytes.all.current": self.reserved,
            "reserved_bytes.all.peak": self.peak_reserved,
            "active_bytes.all.peak": self.peak_allocated,
            "inactive_split_bytes.all.current": self.inactive,
            "inactive_split_bytes.all.peak": self.inactive,
            "num_alloc_retries": self.retries,
            "num_ooms": self.ooms,
        }

    def reset_peak_memory_stats(self, device=None) -> None:
        self.peak_allocated, self.peak_reserved = self.allocated, self.reserved


@pytest.fixture
def fake_cuda(monkeypatch):
    fake = FakeAllocator()
    monkeypatch.setattr(torch.cuda, "memory_stats", fake.memory_stats)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", fake.reset_peak_memory_stats)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(
        torch.cuda.memory,
        "_record_memory_history",
        lambda *a, **k: fake.history.append(("record", a, k)),
    )

    def dump(path: str) -> None:
        Path(path).write_bytes(b"fake snapshot")
        fake.history.append(("dump", path))

    monkeypatch.setattr(torch.cuda.memory, "_dump_snapshot", dump)
    return fake


class Activations(nn.Module):
    """Forward allocates ``act_mb`` of activations (plus split waste); backward would free them."""

    def __init__(self, fake: FakeAllocator, act_mb: int, waste_mb: int) -> None:
        super().__init__()
        self.fake, self.act, self.waste = fake, act_mb * MB, waste_mb * MB

    def forward(self, x):
        self.fake.alloc(self.act, split_waste=self.waste)
        return x


def step(model: Activations, fake: FakeAllocator, act_mb: int) -> None:
    model(torch.zeros(1))  # forward: the peak
    fake.free(
        act_mb * MB, split_waste=50 * MB
    )  # "backward" frees activations, splitting more blocks


def test_cuda_peaks_fragmentation_at_peak_and_window_deltas(fake_cuda, tmp_path):
    fake_cuda.alloc(400 * MB)  # weights + optimizer state before the window
    model = Activations(fake_cuda, act_mb=600, waste_mb=20)
    prof = MemoryProfiler(
        torch.device("cuda", 0),
        model,
        estimate_bytes=1000 * MB,
        history_snapshot=tmp_path / "snap.pickle",
    ).start()
    step(model, fake_cuda, 600)
    fake_cuda.retries += 2
    step(model, fake_cuda, 600)
    r = prof.stop()
    assert r.peak_allocated_bytes == 1000 * MB
    assert r.num_alloc_retries == 2 and r.num_ooms == 0  # deltas, not lifetime counters
    # at the second forward's end: inactive = 20 + 50 + 20 MB; after it, backward added 50 more
    assert r.inactive_split_bytes_at_peak == 90 * MB
    assert fake_cuda.inactive == 140 * MB  # the value after freeing, which must not be reported
    assert r.fragmentation_at_peak == pytest.approx(90 / (1000 + 90))
    assert r.measured_over_estimate == pytest.approx(1.0)
    assert r.forward_samples == 2
    assert Path(r.snapshot_path).read_bytes() == b"fake snapshot"
    assert fake_cuda.history[-1][0] == "record" and fake_cuda.history[-1][2]["enabled"] is None


def test_cuda_without_model_says_fragmentation_not_measured(fake_cuda):
    r = MemoryProfiler(torch.device("cuda", 0)).start().stop()
    assert r.fragmentation_at_peak is None and r.inactive_split_bytes_at_peak is None
    assert any("fragmentation at peak: not measured" in n for n in r.notes)


def test_cpu_rss_peak_sees_a_real_allocation():
    prof = MemoryProfiler(torch.device("cpu"), rss_interval_ms=5).start()
    big = torch.ones(64 * MB // 4)  # 64 MiB, touched
    big += 1
    del big
    r = prof.stop()
    assert r.rss_peak_bytes - r.rss_start_bytes >= 48 * MB
    assert r.peak_allocated_bytes is None  # CPU: no allocator numbers, said in notes
    assert any("not measured on CPU" in n for n in r.notes)
    assert "RSS" in r.method


def test_cli_on_the_builtin_example_and_bad_flags(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit.profiling.memory_profiler",
            "run",
            "--steps",
            "3",
            "--estimate-gib",
            "0.5",
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
    assert r["device"] == "cpu" and r["rss_peak_bytes"] >= r["rss_start_bytes"] > 0
    assert r["estimate_bytes"] == int(0.5 * GIB)
    existing = tmp_path / "snap.pickle"
    existing.write_text("keep me")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit.profiling.memory_profiler",
            "run",
            "--history-snapshot",
            str(existing),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert existing.read_text() == "keep me"
