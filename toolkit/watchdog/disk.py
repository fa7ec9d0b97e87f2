"""Free space where the run writes: a full disk is measured, not read from the error text.

A save that fills the disk fails with whatever its library says (torch's zip writer:
``[enforce fail at inline_container.cc] . unexpected pos``, C++ streams: ``basic_ios::clear:
iostream error``); the partial file it leaves keeps the disk full, so the free space after the
exit is the evidence. A filesystem counts as full below ``min(256 MiB, 1 % of its size)``.
"""

from __future__ import annotations

import os
from pathlib import Path

LOW_FREE_BYTES = 256 * 2**20
LOW_FREE_FRACTION = 0.01


def _existing(path: Path) -> Path | None:
    """``path`` or its nearest existing parent."""
    path = path.absolute()
    for p in (path, *path.parents):
        if p.exists():
            return p
    return None


def low_disk(paths: list[Path]) -> str:
    """A line naming each full filesystem among ``paths`` ('' when all have room)."""
    seen: set[int] = set()
    found = []
    for raw in paths:
        p = _existing(Path(raw))
        if p is None:
            continue
        try:
            dev = p.stat().st_dev
            st = os.statvfs(p)
        except OSError:
            continue
        if dev in seen:
            continue
        seen.add(dev)
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        if total > 0 and free < min(LOW_FREE_BYTES, LOW_FREE_FRACTION * total):
            found.append(f"{p}: {free} of {total} bytes free")
        elif total > 0 and st.f_favail == 0 and st.f_files > 0:
            found.append(f"{p}: no free inodes")
    return ("disk full (measured by the watchdog) on " + "; ".join(found)) if found else ""
