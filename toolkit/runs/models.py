"""Records of the runs registry: plans, sweeps and runs (plain dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)

BACKENDS = ("local", "slurm")


@dataclass
class Plan:
    """An experiment plan: ``title`` from the first markdown heading, ``goal`` from its Goal."""

    id: int
    name: str
    title: str
    goal: str
    markdown: str
    source: str | None
    created: str
    updated: str
    sweeps: list[str] = field(default_factory=list)


@dataclass
class Sweep:
    id: int
    name: str
    goal: str
    plan: str | None
    created: str
    params: dict[str, list[str]] = field(default_factory=dict)
    command: str | None = None


@dataclass
class Run:
    """One run. ``gpus``: the GPU indices assigned (NVML order); ``options``: backend options
    (Slurm time limit, partition, ...); ``note``: why a run waits or how it ended."""

    id: int
    name: str
    command: str
    workdir: str
    env: dict[str, str]
    sweep: str | None
    params: dict[str, str]
    status: str
    exit_code: int | None
    gpus_requested: int
    gpus: list[int]
    host: str | None
    backend: str
    job_id: str | None
    pid: int | None
    created: str
    started: str | None
    ended: str | None
    log_path: str | None
    metrics: dict[str, Any] | None
    options: dict[str, Any]
    note: str | None
