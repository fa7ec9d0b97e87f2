"""A tiny real training run for watchdog fault-injection tests (CPU, a few steps).

Trains a linear model, logs ``step=N loss=X`` lines, writes ``checkpoint-N.pt`` with torch.save
every ``--save-every`` steps, resumes from ``--resume PATH`` (or $RESUME_FROM).

Fault injection (environment):
  FAULT       sigkill | sigkill_every | half_ckpt | nccl | hang | typeerror | oom | nan | sigterm | xid |
              dataloader | disk_full | device_assert | size_mismatch | exit3 |
              heartbeat_deadlock (a thread prints heartbeats, the training thread deadlocks) |
              tqdm_stall (a progress bar redrawn, its counter stuck) | repeat_step (the same step
              line printed forever) | corrupt_ckpt (newest checkpoint: random bytes, full size,
              then SIGKILL) | bitflip_ckpt (flipped bytes inside the tensor data, then SIGKILL) |
              zero_ckpt (0-byte newest checkpoint, then SIGKILL) | disk_full_real (fill the
              checkpoint filesystem, then torch.save: a real ENOSPC; only on a small dedicated
              filesystem, FAULT_FILL_OK=1) | segv (a real SIGSEGV: read address 0) | sigbus (a real
              SIGBUS: read an mmap'd page of a truncated file) | exit0 (exit 0 early) | json_nan
              ({"loss": "nan"} lines) | pause (write FAULT_PAUSE_FILE, sleep FAULT_PAUSE_S s; the
              bench kills the watchdog meanwhile) | orphan (start a grandchild in the group,
              write its pid to FAULT_PAUSE_FILE, then a TypeError)
  FAULT_STEP  the step at which the fault fires (default 3)
  FAULT_ONCE  a marker path: the fault fires only while it does not exist (then it is created),
              so a restarted run gets past the fault like a transient one would
"""

from __future__ import annotations

import argparse
import ctypes
import io
import math
import mmap
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import torch

NCCL_TEXT = (
    "[rank0]:[E1124 03:07:08.408271257 ProcessGroupNCCL.cpp:607] [Rank 0] Watchdog caught collective "
    "operation timeout: WorkNCCL(SeqNum=1580, OpType=ALLREDUCE, NumelIn=466119168, NumelOut=466119168, "
    "Timeout(ms)=600000) ran for 600060 milliseconds before timing out.\n"
    "[rank0]:[E1124 03:07:08.465150152 ProcessGroupNCCL.cpp:1664] [PG 1 Rank 0] Exception (either an "
    "error or timeout) detected by watchdog at work: 1580, last enqueued NCCL work: 1582, last completed "
    "NCCL work: 1579.\n"
)
OOM_TEXT = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
    "of 79.15 GiB of which 1.23 GiB is free. Including non-PyTorch memory, this process has 77.91 GiB "
    "memory in use. Of the allocated memory 75.20 GiB is allocated by PyTorch, and 1.90 GiB is reserved "
    "by PyTorch but unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
    "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)\n"
)


def _save_then(path: Path, model: torch.nn.Module, step: int, damage) -> None:
    torch.save({"model": model.state_dict(), "step": step}, path)
    data = bytearray(path.read_bytes())
    path.write_bytes(damage(data))
    os.kill(os.getpid(), signal.SIGKILL)


def _bitflip(data: bytearray) -> bytes:
    """Flip the first bytes of the tensor data (the zip member ``*/data/0``), size unchanged."""
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/data/0"))
    h = info.header_offset  # the local header's name and extra lengths (torch pads the extra)
    name_len, extra_len = (
        int.from_bytes(data[h + 26 : h + 28], "little"),
        int.from_bytes(data[h + 28 : h + 30], "little"),
    )
    at = h + 30 + name_len + extra_len
    for i in range(at, at + min(16, info.file_size)):
        data[i] ^= 0xFF
    return bytes(data)


def _fill_disk(directory: Path) -> None:
    """Fill the filesystem holding ``directory`` (a small dedicated one: the bench's tmpfs)."""
    if os.environ.get("FAULT_FILL_OK") != "1":
        raise SystemExit("disk_full_real refuses to fill a disk without FAULT_FILL_OK=1")
    with open(directory / "filler.bin", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def _sigbus() -> None:
    path = Path(os.environ.get("FAULT_PAUSE_FILE", "sigbus.map"))
    path.write_bytes(b"x" * mmap.PAGESIZE)
    with open(path, "r+b") as fh:
        m = mmap.mmap(fh.fileno(), mmap.PAGESIZE)
        fh.truncate(0)
        m[0]  # noqa: B018 - the page is past the end of the file now: SIGBUS


def fire(fault: str, step: int, ckpt_dir: Path, model: torch.nn.Module) -> None:
    out = sys.stdout
    if fault == "heartbeat_deadlock":
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()  # the training thread deadlocks; the heartbeat thread goes on printing
    if fault == "tqdm_stall":
        t0 = time.time()
        while True:
            out.write(
                f"\r 62%|######2   | {step}/8 [00:{int(time.time() - t0):02d}<00:02,  2.50it/s]"
            )
            out.flush()
            time.sleep(0.1)
    if fault == "repeat_step":
        while True:
            print(f"step={step} loss=0.500000", flush=True)
            time.sleep(0.1)
    if fault == "corrupt_ckpt":
        _save_then(ckpt_dir / f"checkpoint-{step}.pt", model, step, lambda d: os.urandom(len(d)))
    if fault == "bitflip_ckpt":
        _save_then(ckpt_dir / f"checkpoint-{step}.pt", model, step, _bitflip)
    if fault == "zero_ckpt":
        _save_then(ckpt_dir / f"checkpoint-{step}.pt", model, step, lambda d: b"")
    if fault == "disk_full_real":
        _fill_disk(ckpt_dir)
        torch.save({"model": model.state_dict(), "step": step}, ckpt_dir / f"checkpoint-{step}.pt")
    if fault == "segv":
        ctypes.string_at(0)  # a real segmentation fault
    if fault == "sigbus":
        _sigbus()
    if fault == "exit0":
        sys.exit(0)
    if fault == "pause":
        Path(os.environ["FAULT_PAUSE_FILE"]).write_text(str(os.getpid()))
        time.sleep(float(os.environ.get("FAULT_PAUSE_S", "3")))
    if fault == "orphan":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        Path(os.environ["FAULT_PAUSE_FILE"]).write_text(str(child.pid))
        _ = "loss" + 1  # noqa: F841 - the injected programming error, the grandchild left behind
    if fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    if fault == "half_ckpt":
        path = ckpt_dir / f"checkpoint-{step}.pt"
        torch.save({"model": model.state_dict(), "step": step}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])  # a save cut off mid-write
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "nccl":
        out.write(NCCL_TEXT)
        out.flush()
        sys.exit(1)
    if fault == "xid":
        out.write(
            "NVRM: Xid (PCI:0000:44:00): 79, pid=1234, name=python, GPU has fallen off the bus.\n"
        )
        out.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "dataloader":
        raise RuntimeError(f"DataLoader worker (pid(s) {os.getpid() + 1}) exited unexpectedly")
    if fault == "hang":
        out.flush()
        while True:
            time.sleep(1)
    if fault == "typeerror":
        _ = "loss" + 1  # noqa: F841 - the injected programming error
    if fault == "oom":
        out.write('Traceback (most recent call last):\n  File "train.py", line 1, in <module>\n')
        out.write(OOM_TEXT)
        out.flush()
        sys.exit(1)
    if fault == "disk_full":
        raise OSError(28, "No space left on device")
    if fault == "device_assert":
        raise RuntimeError(
            "CUDA error: device-side assert triggered\nCUDA kernel errors might be "
            "asynchronously reported at some other API call, so the stacktrace below "
            "might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1"
        )
    if fault == "size_mismatch":
        other = torch.nn.Linear(8, 2)
        other.load_state_dict({"weight": torch.zeros(4, 8), "bias": torch.zeros(4)})
    if fault == "exit3":
        sys.exit(3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--save-every", type=int, default=2)
    ap.add_argument("--ckpt-dir", default="ckpt")
    ap.add_argument("--step-time", type=float, default=0.02)
    ap.add_argument("--resume", default=os.environ.get("RESUME_FROM"))
    args = ap.parse_args()
    torch.manual_seed(0)
    ckpt_dir = Path(args.ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    start = 0
    if args.resume:
        state = torch.load(args.resume, weights_only=True)
        model.load_state_dict(state["model"])
        start = int(state["step"])
        print(f"resumed from {args.resume} at step={start}", flush=True)
    fault = os.environ.get("FAULT", "")
    fault_step = int(os.environ.get("FAULT_STEP", "3"))
    once = os.environ.get("FAULT_ONCE")
    x = torch.randn(64, 8)
    y = x.sum(dim=1, keepdim=True)
    if fault == "heartbeat_deadlock" and not (once and Path(once).exists()):

        def heartbeat() -> None:
            while True:
                print("heartbeat: trainer alive", flush=True)
                time.sleep(0.1)

        threading.Thread(target=heartbeat, daemon=True).start()
    for step in range(start + 1, args.steps + 1):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = loss.item()
        if fault == "nan" and step >= fault_step:
            value = math.nan
        if fault == "json_nan" and step >= fault_step:
            print(f'{{"step": {step}, "loss": "nan"}}', flush=True)
        else:
            print(f"step={step} loss={value:.6f}", flush=True)
        if fault == "sigkill_every" and step == start + fault_step:
            os.kill(os.getpid(), signal.SIGKILL)  # dies again after every resume, each time later
        if (
            fault
            and fault not in ("nan", "sigkill_every", "json_nan")
            and step == fault_step
            and not (once and Path(once).exists())
        ):
            if once:
                Path(once).touch()
            fire(fault, step, ckpt_dir, model)
        if step % args.save_every == 0:
            torch.save(
                {"model": model.state_dict(), "step": step}, ckpt_dir / f"checkpoint-{step}.pt"
            )
        time.sleep(args.step_time)
    print("training finished", flush=True)


if __name__ == "__main__":
    main()
