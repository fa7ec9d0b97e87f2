"""GPU specs from ``gpu_specs.yaml`` and exact matching of reported GPU names to them.

Units: memory in GiB, bandwidth in GB/s (10^9 B/s), ``peak_tflops`` in TFLOP/s (10^12 FLOP/s)
and dense (no 2:4 sparsity); :meth:`GpuSpec.peak_flops` returns FLOP/s.

Matching never guesses. A reported name must equal a known name or alias (after normalising case,
punctuation and the "NVIDIA"/"AMD"/"Tesla" prefix); a family name shared by several entries
("NVIDIA H100") is narrowed by PCI device id, then memory size, and anything still ambiguous, or
unknown, raises :class:`UnknownGpuError`. A name we do not know with a PCI device id we do know
resolves by that id.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.errors import InputError

SPECS_PATH = Path(__file__).with_name("gpu_specs.yaml")

#: dtypes a spec may list, in display order.
DTYPES: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp4")

VENDORS = ("nvidia", "amd")

#: A reported memory size fits an entry when reported / nominal is in this range. Drivers reserve
#: some memory and ECC on GDDR cards takes 1/16, so 0.9375 of nominal is normal.
MEMORY_FIT = (0.90, 1.03)

_DTYPE_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "f32": "fp32",
    "tensorfloat32": "tf32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "f16": "fp16",
    "float8": "fp8",
    "float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8",
    "float8_e4m3fnuz": "fp8",
    "float8_e5m2fnuz": "fp8",
    "e4m3": "fp8",
    "e5m2": "fp8",
    "float4": "fp4",
    "nvfp4": "fp4",
}

_KEY_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_MIG_RE = re.compile(r"\bMIG\b", re.IGNORECASE)
_PREFIXES = ("nvidia", "amd", "tesla")

GIB = 1024**3


class UnknownGpuError(InputError):
    """A GPU name, PCI id or memory size that does not identify exactly one known GPU."""


class SpecDataError(InputError):
    """``gpu_specs.yaml`` (or a file given to :func:`load_specs`) is malformed."""


@dataclass(frozen=True)
class GpuSpec:
    """One GPU model. ``peak_tflops`` is dense TFLOP/s per dtype; see module docstring for units."""

    key: str
    name: str
    vendor: str
    architecture: str
    memory_gib: float
    memory_bandwidth_gbs: float
    peak_tflops: dict[str, float]
    source: str
    notes: str = ""
    form_factor: str = ""
    sparse_tflops: dict[str, float] = field(default_factory=dict)
    tdp_watts: float | None = None
    aliases: tuple[str, ...] = ()
    pci_device_ids: tuple[int, ...] = ()

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtypes this part has a peak for, in :data:`DTYPES` order."""
        return tuple(d for d in DTYPES if d in self.peak_tflops)

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s (not TFLOP/s) for ``dtype`` (``bf16``, ``"bfloat16"``, ``torch.float16``...).

        Raises :class:`InputError` naming the dtype and the dtypes this part has.
        """
        canonical = normalize_dtype(dtype)
        if canonical not in self.peak_tflops:
            have = ", ".join(self.dtypes)
            raise InputError(
                f"{self.name} ({self.key}) has no {canonical} peak in gpu_specs.yaml "
                f"(the part lacks it); it has: {have}"
            )
        return self.peak_tflops[canonical] * 1e12

    @property
    def memory_bytes(self) -> int:
        """Nominal memory in bytes (``memory_gib`` x 2^30)."""
        return int(self.memory_gib * GIB)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; PCI ids as ``"0x2330"`` strings."""
        return {
            "key": self.key,
            "name": self.name,
            "vendor": self.vendor,
            "architecture": self.architecture,
            "form_factor": self.form_factor,
            "memory_gib": self.memory_gib,
            "memory_bandwidth_gbs": self.memory_bandwidth_gbs,
            "peak_tflops": {d: self.peak_tflops[d] for d in self.dtypes},
            "sparse_tflops": {d: self.sparse_tflops[d] for d in DTYPES if d in self.sparse_tflops},
            "tdp_watts": self.tdp_watts,
            "pci_device_ids": [f"0x{i:04x}" for i in self.pci_device_ids],
            "aliases": list(self.aliases),
            "source": self.source,
            "notes": self.notes,
        }


def normalize_dtype(dtype: object) -> str:
    """Canonical dtype name from ``"bf16"``, ``"bfloat16"``, ``torch.bfloat16`` and the like."""
    text = str(dtype).strip().lower().removeprefix("torch.")
    canonical = _DTYPE_ALIASES.get(text, text)
    if canonical not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return canonical


def normalize_name(name: str) -> str:
    """Comparable form of a GPU name: lowercase, ``-``/``_`` as spaces, no vendor prefix.

    ``"NVIDIA A100-SXM4-80GB"`` -> ``"a100 sxm4 80gb"``; ``"NVIDIA A10"`` -> ``"a10"``.
    """
    text = name.replace("\u2122", " ").replace("(TM)", " ").replace("(tm)", " ").lower()
    text = re.sub(r"[-_\s]+", " ", text).strip()
    words = text.split(" ")
    while len(words) > 1 and words[0] in _PREFIXES:
        words = words[1:]
    return " ".join(words)


# ----------------------------------------------------------------------------- loading


def _fail(where: str, message: str) -> SpecDataError:
    return SpecDataError(f"{where}: {message}")


def _number(where: str, field_name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _fail(where, f"field '{field_name}' must be a positive number, got {value!r}")
    return float(value)


def _text(where: str, field_name: str, value: Any, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"field '{field_name}' must be a non-empty string, got {value!r}")
    return value.strip()


def _tflops_map(where: str, field_name: str, value: Any, required: bool) -> dict[str, float]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping) or (required and not value):
        raise _fail(where, f"field '{field_name}' must be a mapping of dtype -> TFLOP/s")
    out: dict[str, float] = {}
    for dtype, tflops in value.items():
        if dtype not in DTYPES:
            raise _fail(
                where,
                f"field '{field_name}' has unknown dtype {dtype!r}; expected {', '.join(DTYPES)}",
            )
        out[dtype] = _number(where, f"{field_name}.{dtype}", tflops)
    return out


_FIELDS = {
    "key",
    "name",
    "vendor",
    "architecture",
    "form_factor",
    "memory_gib",
    "memory_bandwidth_gbs",
    "peak_tflops",
    "sparse_tflops",
    "tdp_watts",
    "pci_device_ids",
    "aliases",
    "source",
    "notes",
}


def _parse_entry(index: int, raw: Any, origin: str) -> GpuSpec:
    where = f"{origin}: entry {index}"
    if not isinstance(raw, Mapping):
        raise _fail(where, f"must be a mapping, got {type(raw).__name__}")
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise _fail(where, f"field 'key' must match [a-z0-9-]+, got {key!r}")
    where = f"{origin}: entry {index} (key '{key}')"
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(unknown)}; expected {sorted(_FIELDS)}")
    vendor = _text(where, "vendor", raw.get("vendor"))
    if vendor not in VENDORS:
        raise _fail(where, f"field 'vendor' must be one of {VENDORS}, got {vendor!r}")
    source = _text(where, "source", raw.get("source"))
    if not source.startswith(("https://", "http://")):
        raise _fail(where, f"field 'source' must be a URL, got {source!r}")
    peak = _tflops_map(where, "peak_tflops", raw.get("peak_tflops"), required=True)
    sparse = _tflops_map(where, "sparse_tflops", raw.get("sparse_tflops"), required=False)
    for dtype, value in sparse.items():
        if dtype not in peak:
            raise _fail(where, f"sparse_tflops.{dtype} given but peak_tflops.{dtype} missing")
        if value < peak[dtype]:
            raise _fail(
                where,
                f"sparse_tflops.{dtype} ({value}) is below the dense peak_tflops.{dtype} "
                f"({peak[dtype]}); peak_tflops must be the dense figure",
            )
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise _fail(where, f"field 'aliases' must be a list of names, got {aliases!r}")
    pci = raw.get("pci_device_ids") or []
    if not isinstance(pci, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 < i <= 0xFFFF for i in pci
    ):
        raise _fail(where, f"field 'pci_device_ids' must be a list of 16-bit ids, got {pci!r}")
    tdp = raw.get("tdp_watts")
    return GpuSpec(
        key=key,
        name=_text(where, "name", raw.get("name")),
        vendor=vendor,
        architecture=_text(where, "architecture", raw.get("architecture")),
        form_factor=_text(where, "form_factor", raw.get("form_factor"), required=False),
        memory_gib=_number(where, "memory_gib", raw.get("memory_gib")),
        memory_bandwidth_gbs=_number(
            where, "memory_bandwidth_gbs", raw.get("memory_bandwidth_gbs")
        ),
        peak_tflops=peak,
        sparse_tflops=sparse,
        tdp_watts=None if tdp is None else _number(where, "tdp_watts", tdp),
        aliases=tuple(a.strip() for a in aliases),
        pci_device_ids=tuple(pci),
        source=source,
        notes=_text(where, "notes", raw.get("notes"), required=False),
    )


def load_specs(path: Path | str) -> list[GpuSpec]:
    """Read and validate a spec file (uncached). Raises :class:`SpecDataError` naming entry and field."""
    path = Path(path)
    origin = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecDataError(f"cannot read GPU spec file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecDataError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("gpus"), list):
        raise SpecDataError(f"{origin}: expected a top-level 'gpus:' list")
    specs = [_parse_entry(i, raw, origin) for i, raw in enumerate(data["gpus"])]
    seen_keys: dict[str, int] = {}
    seen_pci: dict[int, str] = {}
    for i, spec in enumerate(specs):
        if spec.key in seen_keys:
            raise SpecDataError(
                f"{origin}: entry {i} (key '{spec.key}'): duplicate key (also entry {seen_keys[spec.key]})"
            )
        seen_keys[spec.key] = i
        for pci in spec.pci_device_ids:
            if pci in seen_pci:
                raise SpecDataError(
                    f"{origin}: entry {i} (key '{spec.key}'): pci_device_ids 0x{pci:04x} "
                    f"is also listed by '{seen_pci[pci]}'"
                )
            seen_pci[pci] = spec.key
    return specs


@functools.lru_cache(maxsize=1)
def _cached_specs() -> tuple[GpuSpec, ...]:
    return tuple(load_specs(SPECS_PATH))


def all_specs() -> list[GpuSpec]:
    """Every GPU in ``gpu_specs.yaml``, validated once and cached."""
    return list(_cached_specs())


def known_keys() -> list[str]:
    return [s.key for s in _cached_specs()]


# ----------------------------------------------------------------------------- matching


def _names_of(spec: GpuSpec) -> set[str]:
    return {normalize_name(spec.name), *(normalize_name(a) for a in spec.aliases)}


def _match_name(name: str, specs: Iterable[GpuSpec]) -> list[GpuSpec]:
    wanted = normalize_name(name)
    return [s for s in specs if wanted in _names_of(s)]


def memory_fits(spec: GpuSpec, memory_bytes: int) -> bool:
    """Whether a reported memory total (bytes) is plausible for ``spec`` (see :data:`MEMORY_FIT`)."""
    ratio = memory_bytes / (spec.memory_gib * GIB)
    return MEMORY_FIT[0] <= ratio <= MEMORY_FIT[1]


def _keys(specs: Iterable[GpuSpec]) -> str:
    return ", ".join(s.key for s in specs)


def _unknown_message(what: str) -> str:
    return (
        f"{what}; known GPU keys: {', '.join(known_keys())}. "
        "Pass --gpu KEY, or --peak-tflops with the dense peak for your dtype."
    )


@dataclass(frozen=True)
class Resolution:
    """A resolved GPU and how it was matched (``how`` is one human-readable line)."""

    spec: GpuSpec
    how: str


def resolve(
    reported_name: str, memory_bytes: int | None = None, pci_device_id: int | None = None
) -> Resolution:
    """Like :func:`resolve_gpu`, also saying which evidence decided the match."""
    specs = _cached_specs()
    name = (reported_name or "").strip()
    pci_text = "" if pci_device_id is None else f" (PCI device id 0x{pci_device_id:04x})"
    if name and _MIG_RE.search(name):
        raise UnknownGpuError(
            f"'{name}' is a MIG slice: it has a fraction of the GPU's compute and memory, so the "
            "full-GPU peak does not apply. Pass --peak-tflops with the slice's share of the peak."
        )
    by_pci = (
        [] if pci_device_id is None else [s for s in specs if pci_device_id in s.pci_device_ids]
    )
    candidates = _match_name(name, specs) if name else []
    how = f"name '{name}'"
    if not candidates:
        if len(by_pci) == 1:
            candidates, how = by_pci, f"PCI device id 0x{pci_device_id:04x} (name '{name}' unknown)"
        else:
            what = f"unknown GPU '{name}'" if name else "no GPU name given"
            raise UnknownGpuError(_unknown_message(what + pci_text))
    elif by_pci:
        pci_keys = {s.key for s in by_pci}
        narrowed = [s for s in candidates if s.key in pci_keys]
        if not narrowed:
            raise UnknownGpuError(
                f"GPU '{name}' matches {_keys(candidates)} but PCI device id "
                f"0x{pci_device_id:04x} is {_keys(by_pci)}; refusing to guess. Pass --gpu KEY."
            )
        if len(candidates) > 1:
            how += f" + PCI device id 0x{pci_device_id:04x}"
        candidates = narrowed
    if memory_bytes is not None:
        fitting = [s for s in candidates if memory_fits(s, memory_bytes)]
        gib = memory_bytes / GIB
        if not fitting:
            expected = ", ".join(f"{s.key} {s.memory_gib:g} GiB" for s in candidates)
            raise UnknownGpuError(
                f"GPU '{name}'{pci_text} reports {gib:.1f} GiB of memory, which fits none of "
                f"{expected} (a partitioned or unlisted variant?); refusing to guess. "
                "Pass --gpu KEY or --peak-tflops."
            )
        if len(candidates) > 1 and len(fitting) == 1:
            how += f" + memory {gib:.1f} GiB"
        candidates = fitting
    if len(candidates) > 1:
        raise UnknownGpuError(
            f"GPU '{name}'{pci_text} is ambiguous: it could be {_keys(candidates)}; "
            "the PCI device id or memory size would decide. Pass --gpu KEY, or --peak-tflops."
        )
    return Resolution(candidates[0], how)


def resolve_gpu(
    reported_name: str, memory_bytes: int | None = None, pci_device_id: int | None = None
) -> GpuSpec:
    """The spec for a GPU as NVML / ``torch.cuda.get_device_name`` / ROCm reports it.

    ``memory_bytes``: total memory reported (bytes); ``pci_device_id``: 16-bit PCI device id
    (NVML's ``pciDeviceId >> 16``). Exact matching only: ambiguous or unknown raises
    :class:`UnknownGpuError` (an :class:`InputError`), never a closest match.
    """
    return resolve(reported_name, memory_bytes, pci_device_id).spec


def get_spec(name: str) -> GpuSpec:
    """The spec for a ``--gpu`` value: key, display name, alias or reported name (any case).

    Unknown or ambiguous names raise :class:`UnknownGpuError` listing the known keys.
    """
    text = (name or "").strip()
    if not text:
        raise UnknownGpuError(_unknown_message("empty GPU name"))
    for spec in _cached_specs():
        if spec.key == text.lower():
            return spec
    return resolve_gpu(text)
