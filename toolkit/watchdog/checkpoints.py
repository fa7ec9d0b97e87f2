"""Find checkpoints and choose the latest *complete* one. Nothing here writes or deletes.

Two layouts: a glob (``ckpt/*.pt``) or an HF-Trainer-style directory holding ``checkpoint-N``
entries (files or folders). Order is by the step number N in the name, then by mtime.
Completeness is checked cheaply, without loading tensors:

- torch zip files (``torch.save`` default): the zip central directory must be readable,
  every member must end inside the file (a truncated save fails exactly where torch.load says
  "failed finding central directory"), every member's CRC-32 must match (a full-size file with
  corrupt bytes; torch.load does not check CRCs and would load corrupt weights) and the pickle ``data.pkl`` must parse to its end: what ``torch.load`` needs,
  checked without importing torch (the restart path stays fast);
- legacy ``torch.save`` pickles start with torch's magic number; any other content in a
  ``.pt``/``.pth``/``.ckpt`` file (random bytes of the right size) is not a checkpoint;
- safetensors: the 8-byte header length and JSON header must be readable and every tensor's
  data must end inside the file;
- other files: non-empty;
- folders: not empty, no empty file, every weights file above complete, and any
  ``required`` names present.

Verdicts are cached by (path, size, mtime), so each checkpoint is read once.
"""

from __future__ import annotations

import glob
import json
import os
import pickletools
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CHECKPOINT_NAME_RE = re.compile(r"^checkpoint-(\d+)(\.[\w.]+)?$")
NUMBER_RE = re.compile(r"(\d+)")
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")
#: torch.save's legacy (non-zip) format: pickle protocol 2, then the long magic number
LEGACY_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206a a85019".replace(" ", ""))
_VERDICTS: dict[tuple[str, int, int], str | None] = {}


@dataclass
class Choice:
    """The checkpoint to resume from, and the newer ones skipped (with why)."""

    path: Path | None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    candidates: int = 0


def step_of(path: Path) -> int | None:
    """Step number in a checkpoint name (``checkpoint-1200`` -> 1200), or the last integer."""
    m = CHECKPOINT_NAME_RE.match(path.name)
    if m:
        return int(m.group(1))
    nums = NUMBER_RE.findall(path.name)
    return int(nums[-1]) if nums else None


def find(pattern: str | None = None, directory: str | Path | None = None) -> list[Path]:
    """Checkpoints, oldest first: ``pattern`` is a glob; ``directory`` holds ``checkpoint-N``."""
    paths: list[Path] = []
    if pattern:
        paths += [Path(p) for p in glob.glob(pattern)]
    if directory is not None and Path(directory).is_dir():
        paths += [p for p in Path(directory).iterdir() if CHECKPOINT_NAME_RE.match(p.name)]
    unique = {p.resolve(): p for p in paths}

    def key(p: Path) -> tuple[int, float]:
        step = step_of(p)
        try:
            mtime = p.stat().st_mtime
        except OSError:
            mtime = 0.0
        return (step if step is not None else -1, mtime)

    return sorted(unique.values(), key=key)


def check_file(path: Path) -> str | None:
    """None when ``path`` looks complete and loadable, else the reason it is not."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc}"
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _VERDICTS:
        if len(_VERDICTS) > 4096:
            _VERDICTS.clear()
        _VERDICTS[key] = _check_file(path, st.st_size)
    return _VERDICTS[key]


def _check_zip(path: Path, size: int) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            for info in infos:
                # local header (30 bytes + name + extra, bounded) + data must fit in the file
                if info.header_offset + 30 + len(info.filename) + info.compress_size > size:
                    return f"zip member {info.filename} runs past the end of the file"
            bad = zf.testzip()
            if bad is not None:
                return (
                    f"corrupt data: zip member {bad} fails its CRC-32 check (the bytes changed "
                    "after they were written; torch.load does not check and would load them)"
                )
            pickles = [i.filename for i in infos if i.filename.endswith("data.pkl")]
            if pickles:
                reason = _check_pickle(zf.read(pickles[0]))
                if reason:
                    return f"{pickles[0]}: {reason}"
    except zipfile.BadZipFile as exc:
        return f"truncated or corrupt zip (torch.load would fail: failed finding central directory): {exc}"
    except (OSError, EOFError, zipfile.LargeZipFile, NotImplementedError) as exc:
        return f"unreadable zip: {exc}"
    return None


def _check_pickle(data: bytes) -> str | None:
    """None when ``data`` is one complete pickle (parsed op by op, nothing executed)."""
    try:
        last = None
        for op, _arg, _pos in pickletools.genops(data):
            last = op.name
        if last != "STOP":
            return "the pickle does not end with STOP"
    except Exception as exc:  # noqa: BLE001 - pickletools raises ValueError and friends
        return f"corrupt pickle ({type(exc).__name__}: {exc})"
    return None


def _check_file(path: Path, size: int) -> str | None:
    if size == 0:
        return "empty file"
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:4] == b"PK\x03\x04" or zipfile.is_zipfile(path):
        return _check_zip(path, size)
    if path.suffix in TORCH_SUFFIXES and not head.startswith(LEGACY_MAGIC):
        return (
            "not a torch checkpoint: neither a zip archive (torch.save's format) nor a legacy "
            "torch pickle (corrupt content; torch.load would fail)"
        )
    if path.suffix == ".safetensors":
        if size < 8:
            return "safetensors file shorter than its 8-byte header"
        (header_len,) = struct.unpack("<Q", head[:8])
        if 8 + header_len > size:
            return "safetensors header runs past the end of the file"
        with open(path, "rb") as fh:
            fh.seek(8)
            try:
                header = json.loads(fh.read(header_len))
            except ValueError:
                return "safetensors header is not valid JSON"
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        if ends and 8 + header_len + max(ends) > size:
            return "safetensors tensor data runs past the end of the file"
    return None


def check(path: Path, required: tuple[str, ...] = ()) -> str | None:
    """None when the checkpoint file or folder looks complete, else why not."""
    if path.is_file():
        return check_file(path)
    if not path.is_dir():
        return "missing"
    files = [p for p in path.rglob("*") if p.is_file()]
    if not files:
        return "empty folder"
    for name in required:
        if not (path / name).is_file():
            return f"required file {name} is missing"
    for p in files:
        if p.stat().st_size == 0:
            return f"{p.relative_to(path)} is empty"
        if p.suffix in WEIGHT_SUFFIXES:
            reason = check_file(p)
            if reason:
                return f"{p.relative_to(path)}: {reason}"
    return None


def latest_complete(
    pattern: str | None = None, directory: str | Path | None = None, required: tuple[str, ...] = ()
) -> Choice:
    """The newest complete checkpoint; newer incomplete ones are listed in ``skipped``."""
    found = find(pattern, directory)
    choice = Choice(None, [], len(found))
    for path in reversed(found):
        reason = check(path, required)
        if reason is None:
            choice.path = path
            return choice
        choice.skipped.append((str(path), reason))
    return choice


def snapshot(pattern: str | None, directory: str | Path | None) -> dict[str, tuple[int, float]]:
    """``{path: (size bytes, mtime s)}`` of every checkpoint file (recursing into folders)."""
    out: dict[str, tuple[int, float]] = {}
    for path in find(pattern, directory):
        entries = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for p in entries:
            try:
                st = os.stat(p)
            except OSError:
                continue
            out[str(p)] = (st.st_size, st.st_mtime)
    return out
