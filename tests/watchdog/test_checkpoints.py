"""Checkpoint discovery and completeness: torch zip, safetensors, HF checkpoint-N folders."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

from toolkit.watchdog import checkpoints


def save(path: Path, step: int) -> Path:
    torch.save({"w": torch.randn(64, 64), "step": step}, path)
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_torch_file_is_skipped_and_torch_agrees(tmp_path):
    for step in (100, 200, 300):
        save(tmp_path / f"checkpoint-{step}.pt", step)
    truncate(tmp_path / "checkpoint-300.pt")
    try:
        torch.load(tmp_path / "checkpoint-300.pt", weights_only=True)
        raise AssertionError("torch loaded a truncated file")
    except (RuntimeError, OSError):
        pass  # "failed finding central directory" (RuntimeError) or, torch 2.13, OSError EINVAL
    choice = checkpoints.latest_complete(str(tmp_path / "checkpoint-*.pt"))
    assert choice.path.name == "checkpoint-200.pt"
    assert choice.skipped[0][0].endswith("checkpoint-300.pt")
    assert "central directory" in choice.skipped[0][1]
    assert (tmp_path / "checkpoint-300.pt").exists()


def test_file_cut_only_at_the_tail_is_still_caught(tmp_path):
    path = save(tmp_path / "checkpoint-1.pt", 1)
    truncate(path, 0.98)
    assert checkpoints.check(path) is not None


def test_ordering_is_by_step_number_not_name(tmp_path):
    for step in (9, 10, 100):
        save(tmp_path / f"checkpoint-{step}.pt", step)
    assert [p.name for p in checkpoints.find(str(tmp_path / "*.pt"))] == [
        "checkpoint-9.pt",
        "checkpoint-10.pt",
        "checkpoint-100.pt",
    ]


def _hf_checkpoint(root: Path, step: int) -> Path:
    d = root / f"checkpoint-{step}"
    d.mkdir()
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (d / "optimizer.pt").write_bytes((root.parent / "opt.pt").read_bytes())
    return d


def test_hf_layout_latest_complete_folder(tmp_path):
    save(tmp_path / "opt.pt", 0)
    out = tmp_path / "out"
    out.mkdir()
    for step in (500, 1000, 1500):
        _hf_checkpoint(out, step)
    (out / "tmp-checkpoint-2000").mkdir()  # HF's in-progress name is not a checkpoint
    (out / "checkpoint-1500" / "trainer_state.json").write_text("")  # half-written
    choice = checkpoints.latest_complete(directory=out, required=("trainer_state.json",))
    assert choice.path.name == "checkpoint-1000"
    assert "empty" in choice.skipped[0][1]
    truncate(out / "checkpoint-1000" / "model.safetensors", 0.9)
    choice = checkpoints.latest_complete(directory=out, required=("trainer_state.json",))
    assert choice.path.name == "checkpoint-500"
    (out / "checkpoint-500" / "trainer_state.json").unlink()
    choice = checkpoints.latest_complete(directory=out, required=("trainer_state.json",))
    assert choice.path is None and len(choice.skipped) == 3


def test_nothing_found(tmp_path):
    choice = checkpoints.latest_complete(str(tmp_path / "*.pt"), tmp_path / "missing")
    assert choice.path is None and choice.candidates == 0
