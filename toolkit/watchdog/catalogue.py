"""The failure catalogue: every log pattern the watchdog recognises, in one table.

Each :class:`Pattern` names a class (``environment`` / ``resources`` / ``code`` /
``numerical``), a subclass, a regular expression matched against the log tail, a one-line
meaning for the report, and a ``rank``: when several patterns match, the lowest rank wins.
The ranks encode root cause over symptom: a GPU that fell off the bus explains anything after
it; a CUDA OOM or a programming error on one rank is what makes the *other* ranks hit an NCCL
timeout, so those outrank the NCCL patterns; generic signals come last.

The texts were checked against real reports (PyTorch ``ProcessGroupNCCL.cpp`` watchdog lines,
``torch.OutOfMemoryError`` messages, NVRM kernel lines, DataLoader errors, slurmstepd lines);
tests/watchdog/fixtures holds real-format samples for every entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ENVIRONMENT = "environment"
RESOURCES = "resources"
CODE = "code"
NUMERICAL = "numerical"
UNKNOWN = "unknown"
SUCCESS = "success"

#: Classes the watchdog restarts; every other class stops and reports.
RESTARTABLE = frozenset({ENVIRONMENT})


@dataclass(frozen=True)
class Pattern:
    """One recognised failure text."""

    cls: str
    subclass: str
    regex: str
    meaning: str
    rank: int
    action: str = ""
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.regex, re.IGNORECASE | re.MULTILINE))


_PY_PROGRAMMING_ERRORS = (
    "TypeError|AttributeError|NameError|KeyError|IndexError|ValueError|AssertionError|"
    "ImportError|ModuleNotFoundError|SyntaxError|IndentationError|ZeroDivisionError|"
    "UnboundLocalError|NotImplementedError|RecursionError|FileNotFoundError"
)

CATALOGUE: tuple[Pattern, ...] = (
    # --- hardware: root cause of whatever follows -------------------------------------------
    Pattern(
        ENVIRONMENT,
        "gpu-fallen-off-bus",
        r"fallen off the bus",
        "the GPU stopped responding on PCIe (Xid 79)",
        10,
        "restart; if it recurs on this node, drain the node",
    ),
    Pattern(
        ENVIRONMENT,
        "ecc-error",
        r"uncorrectable ECC error|double bit error \(DBE\)|NVRM: Xid \([^)]*\): (48|63|64|92|94|95)\b",
        "uncorrectable GPU memory (ECC) error",
        11,
        "restart; report the node if it recurs",
    ),
    Pattern(
        ENVIRONMENT,
        "gpu-xid-app-fault",
        r"NVRM: Xid \([^)]*\): (13|31|43)\b",
        "a GPU fault NVIDIA lists under user-application as well as driver causes (Xid 13 graphics "
        "exception, 31 MMU page fault, 43 GPU stopped processing)",
        12,
        "restart once; if it recurs at the same step it is the code (an out-of-range address or "
        "index): rerun with CUDA_LAUNCH_BLOCKING=1 or under compute-sanitizer",
    ),
    Pattern(
        ENVIRONMENT,
        "gpu-xid",
        r"NVRM: Xid \(",
        "the NVIDIA driver reported an Xid GPU error",
        13,
        "restart; check `dmesg` on the node for the Xid number",
    ),
    # --- resources: a restart fails the same way ---------------------------------------------
    Pattern(
        RESOURCES,
        "cuda-oom",
        r"CUDA out of memory|torch\.(cuda\.)?OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED",
        "the GPU ran out of memory",
        20,
        "reduce the micro-batch size or sequence length, or enable activation checkpointing",
    ),
    Pattern(
        RESOURCES,
        "disk-full",
        r"No space left on device|\[Errno 28\]|\bENOSPC\b|\berrno[ =:]*28\b|Disk quota exceeded",
        "the disk (or quota) is full",
        21,
        "free space where checkpoints and logs are written (nothing was deleted)",
    ),
    # --- numerical ---------------------------------------------------------------------------
    Pattern(
        NUMERICAL,
        "nan-loss",
        r"\bloss[\"']?\s*[=:]\s*[\"']?[-+]?(nan|inf)\b|Loss is (nan|inf)|non-finite loss|loss (became|is) (NaN|Inf)",
        "the loss became NaN or Inf",
        30,
        "inspect the learning rate, warm-up and data around the reported step",
    ),
    # --- code ---------------------------------------------------------------------------------
    Pattern(
        CODE,
        "device-side-assert",
        r"device-side assert(ion)? triggered",
        "a CUDA kernel assertion failed (often an index out of range, e.g. a label >= num_classes)",
        40,
        "rerun with CUDA_LAUNCH_BLOCKING=1 to find the failing op; check label and index ranges",
    ),
    Pattern(
        CODE,
        "state-dict-mismatch",
        r"size mismatch for [\w.]+|Error\(s\) in loading state_dict|Missing key\(s\) in state_dict|Unexpected key\(s\) in state_dict",
        "the checkpoint does not fit the model (shapes or keys differ)",
        41,
        "load a checkpoint that matches the model configuration",
    ),
    Pattern(
        CODE,
        "python-exception",
        rf"^\s*(?:[\w.]+\.)?({_PY_PROGRAMMING_ERRORS})(?::|$)",
        "a Python programming error ended the run",
        42,
        "fix the code at the last frame of the traceback",
    ),
    # --- environment: transient, restart ------------------------------------------------------
    Pattern(
        ENVIRONMENT,
        "nccl-timeout",
        r"Watchdog caught collective operation timeout|WorkNCCL\(SeqNum=\d+.*ran for \d+ milliseconds before timing out",
        "a collective (NCCL) operation timed out: a peer rank died, stalled or the network dropped",
        50,
        "restart; if it recurs at the same step, look for a rank that failed first",
    ),
    Pattern(
        ENVIRONMENT,
        "nccl-error",
        r"NCCL error in:|ncclSystemError|ncclRemoteError|ncclInternalError|NCCL communicator was aborted|DistBackendError",
        "NCCL reported a communication error",
        51,
        "restart",
    ),
    Pattern(
        ENVIRONMENT,
        "oom-killer",
        r"Out of memory: Killed process|Memory cgroup out of memory|oom-kill|oom_reaper|Some of your processes may have been killed by the cgroup out-of-memory handler",
        "the kernel OOM-killer ended a process (host memory)",
        52,
        "restart; if it recurs, lower DataLoader workers or prefetch",
    ),
    Pattern(
        ENVIRONMENT,
        "dataloader-killed",
        r"DataLoader worker \(pid\(?s?\)? [\d, ]+\) (exited unexpectedly|is killed by signal)",
        "a DataLoader worker process died (usually host memory or shared memory)",
        53,
        "restart; if it recurs, lower num_workers or raise /dev/shm",
    ),
    Pattern(
        ENVIRONMENT,
        "preemption",
        r"DUE TO PREEMPTION|DUE TO TIME LIMIT|\bJOB \d+ ON \S+ CANCELLED AT .* DUE TO NODE FAILURE",
        "the scheduler preempted the job or it hit its time limit",
        54,
        "restart (requeue)",
    ),
)


def patterns() -> tuple[Pattern, ...]:
    """The catalogue sorted by rank (best explanation first)."""
    return tuple(sorted(CATALOGUE, key=lambda p: p.rank))
