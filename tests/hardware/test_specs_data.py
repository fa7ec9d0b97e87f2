"""gpu_specs.yaml sanity: coverage, datasheet anchors, internal consistency, loader validation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from toolkit.errors import InputError
from toolkit.hardware.specs import (
    DTYPES,
    SPECS_PATH,
    GpuSpec,
    SpecDataError,
    all_specs,
    get_spec,
    load_specs,
    memory_fits,
    resolve_gpu,
)

REQUIRED_KEYS = [
    "v100-sxm2-16gb", "v100-sxm2-32gb", "v100-pcie-16gb", "v100-pcie-32gb",
    "a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-40gb", "a100-pcie-80gb",
    "a10", "a10g", "l4", "l40", "l40s", "rtx-3090", "rtx-4090",
    "h100-sxm", "h100-pcie", "h100-nvl", "h200", "gh200-96gb", "gh200-144gb", "h20",
    "b200", "gb200", "mi250x", "mi300x", "mi325x",
]  # fmt: skip

SPECS = all_specs()
BY_KEY = {s.key: s for s in SPECS}


def test_all_required_gpus_present() -> None:
    missing = [k for k in REQUIRED_KEYS if k not in BY_KEY]
    assert not missing


@pytest.mark.parametrize("spec", SPECS, ids=[s.key for s in SPECS])
def test_entry_is_complete_and_plausible(spec: GpuSpec) -> None:
    assert spec.source.startswith("https://")
    assert spec.vendor in ("nvidia", "amd")
    assert spec.aliases, "every entry needs the name(s) software reports"
    assert 8 <= spec.memory_gib <= 300
    assert 200 <= spec.memory_bandwidth_gbs <= 10_000
    assert set(spec.peak_tflops) <= set(DTYPES)
    assert {"fp32", "fp16"} <= set(spec.peak_tflops), "every listed part has fp32 and fp16"


@pytest.mark.parametrize("spec", SPECS, ids=[s.key for s in SPECS])
def test_dense_is_half_of_published_sparse(spec: GpuSpec) -> None:
    """A 'with sparsity' figure copied as dense would fail here (ratio 1, not 2)."""
    for dtype, sparse in spec.sparse_tflops.items():
        dense = spec.peak_tflops[dtype]
        assert dense <= sparse
        assert sparse / dense == pytest.approx(2.0, rel=0.01), dtype


@pytest.mark.parametrize("spec", SPECS, ids=[s.key for s in SPECS])
def test_precision_ordering(spec: GpuSpec) -> None:
    peak = spec.peak_tflops
    assert peak["fp32"] < peak["fp16"]
    if "bf16" in peak:
        assert peak["bf16"] == peak["fp16"]
    if "tf32" in peak:
        assert peak["fp32"] <= peak["tf32"] < peak["fp16"]
    if "fp8" in peak:
        assert peak["fp8"] == pytest.approx(2 * peak["fp16"], rel=0.01)
    if "fp4" in peak:
        assert peak["fp4"] == pytest.approx(2 * peak["fp8"], rel=0.01)


def test_dtypes_the_parts_lack_are_absent() -> None:
    for key in ("v100-sxm2-16gb", "v100-sxm2-32gb", "v100-pcie-16gb", "v100-pcie-32gb"):
        assert set(BY_KEY[key].peak_tflops) == {"fp32", "fp16"}
    for key in ("a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-40gb", "a100-pcie-80gb", "a10"):
        assert "fp8" not in BY_KEY[key].peak_tflops
    assert not {"tf32", "fp8"} & set(BY_KEY["mi250x"].peak_tflops)
    for key in ("h100-sxm", "h100-pcie", "h100-nvl", "h200", "l40s", "l4", "mi300x", "b200"):
        assert "fp8" in BY_KEY[key].peak_tflops
    assert all("fp4" not in s.peak_tflops for s in SPECS if s.architecture != "Blackwell")


@pytest.mark.parametrize(
    "key,field,expected",
    [
        ("a100-sxm-80gb", "bf16", 312.0),
        ("a100-sxm-80gb", "tf32", 156.0),
        ("a100-sxm-80gb", "fp32", 19.5),
        ("a100-sxm-80gb", "bandwidth", 2039),
        ("h100-sxm", "bf16", 989.4),
        ("h100-sxm", "fp8", 1978.9),
        ("h100-sxm", "tf32", 494.7),
        ("h100-sxm", "fp32", 67.0),
        ("h100-sxm", "bandwidth", 3350),
        ("h100-pcie", "bf16", 756.0),
        ("h100-pcie", "bandwidth", 2000),
        ("h200", "memory", 141),
        ("h200", "bandwidth", 4800),
        ("mi300x", "bf16", 1307.4),
        ("mi300x", "memory", 192),
        ("mi300x", "bandwidth", 5300),
        ("l40s", "bf16", 366.5),
        ("l40s", "fp8", 733.0),
        ("l40", "bf16", 181.05),
    ],
)
def test_datasheet_anchors(key: str, field: str, expected: float) -> None:
    spec = BY_KEY[key]
    value = {
        "bandwidth": spec.memory_bandwidth_gbs,
        "memory": spec.memory_gib,
    }.get(field, spec.peak_tflops.get(field))
    assert value == pytest.approx(expected)


def test_variant_ordering() -> None:
    bf16 = {k: s.peak_tflops.get("bf16") for k, s in BY_KEY.items()}
    assert bf16["h100-sxm"] > bf16["h100-nvl"] > bf16["h100-pcie"]
    assert 1.95 < bf16["l40s"] / bf16["l40"] < 2.05  # L40: GeForce-rate tensor cores
    assert bf16["a10"] > bf16["a10g"]
    assert bf16["gb200"] > bf16["b200"] > bf16["h200"] == bf16["h100-sxm"]
    assert bf16["mi250x"] == pytest.approx(2 * bf16["mi250x-gcd"])
    bw = {k: s.memory_bandwidth_gbs for k, s in BY_KEY.items()}
    assert bw["a100-sxm-80gb"] > bw["a100-pcie-80gb"] > bw["a100-sxm-40gb"] == bw["a100-pcie-40gb"]


@pytest.mark.parametrize("spec", SPECS, ids=[s.key for s in SPECS])
def test_each_entry_resolves_from_its_own_aliases(spec: GpuSpec) -> None:
    """Every alias reaches its entry, given the memory (and PCI id) the part would report."""
    memory = int(spec.memory_bytes * 0.97)
    pci = spec.pci_device_ids[0] if spec.pci_device_ids else None
    for name in (spec.name, *spec.aliases):
        assert resolve_gpu(name, memory_bytes=memory, pci_device_id=pci).key == spec.key, name


def test_nominal_memory_fits_itself_and_not_neighbours() -> None:
    h100, nvl = BY_KEY["h100-pcie"], BY_KEY["h100-nvl"]
    assert memory_fits(h100, 81559 * 1024**2) and not memory_fits(nvl, 81559 * 1024**2)
    assert memory_fits(nvl, 95830 * 1024**2) and not memory_fits(h100, 95830 * 1024**2)
    l40s = BY_KEY["l40s"]
    assert memory_fits(l40s, 46068 * 1024**2)  # ECC on GDDR6 reserves 1/16


def test_peak_flops_units_and_errors() -> None:
    h100 = get_spec("h100-sxm")
    assert h100.peak_flops("bf16") == pytest.approx(989.4e12)
    assert h100.peak_flops("bfloat16") == h100.peak_flops("torch.bfloat16")
    assert h100.peak_flops("float16") == h100.peak_flops("fp16")
    assert h100.peak_flops("float8_e4m3fn") == pytest.approx(1978.9e12)
    with pytest.raises(InputError, match=r"no fp8 peak.*it has: fp32, tf32, bf16, fp16"):
        get_spec("a100-sxm-80gb").peak_flops("fp8")
    with pytest.raises(InputError, match="unknown dtype 'int8'"):
        h100.peak_flops("int8")


def test_all_specs_is_cached_and_a_copy() -> None:
    first = all_specs()
    first.clear()
    assert len(all_specs()) == len(SPECS)
    assert all_specs()[0] is SPECS[0]


def test_to_dict_is_json_ready() -> None:
    data = get_spec("h100-pcie").to_dict()
    assert data["pci_device_ids"] == ["0x2331"]
    assert data["source"].startswith("https://")
    assert list(data["peak_tflops"]) == ["fp32", "tf32", "bf16", "fp16", "fp8"]


# ----------------------------------------------------------------------------- loader validation


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(SPECS_PATH.read_text())
    mutate(data["gpus"])
    path = tmp_path / "gpu_specs.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _entry(gpus: list[dict], key: str) -> dict:
    return next(g for g in gpus if g["key"] == key)


@pytest.mark.parametrize(
    "mutate,pattern",
    [
        (lambda g: _entry(g, "h100-sxm").pop("source"), r"key 'h100-sxm'.*'source'"),
        (lambda g: _entry(g, "l4").update(source="datasheet"), r"key 'l4'.*must be a URL"),
        (
            lambda g: _entry(g, "h100-sxm")["peak_tflops"].update(bf16=1979.0),
            r"key 'h100-sxm'.*sparse_tflops.bf16 \(1978.9\) is below the dense",
        ),
        (
            lambda g: _entry(g, "a10")["peak_tflops"].update(int8=250),
            r"key 'a10'.*unknown dtype 'int8'",
        ),
        (
            lambda g: _entry(g, "a10").update(memory_gib="24GB"),
            r"key 'a10'.*'memory_gib' must be a positive number",
        ),
        (lambda g: g.append(dict(_entry(g, "l4"))), r"key 'l4'.*duplicate key"),
        (lambda g: _entry(g, "l4").update(key="L4 card"), r"entry \d+: field 'key'"),
        (
            lambda g: _entry(g, "l40").update(pci_device_ids=[0x26B9]),
            r"key 'l40s'.*0x26b9 is also listed by 'l40'",
        ),
        (lambda g: _entry(g, "l4").update(flops=1), r"key 'l4'.*unknown field\(s\) flops"),
    ],
)
def test_malformed_file_names_entry_and_field(tmp_path: Path, mutate, pattern: str) -> None:
    with pytest.raises(SpecDataError, match=pattern):
        load_specs(_write(tmp_path, mutate))


def test_shipped_file_loads_and_matches_cache() -> None:
    fresh = load_specs(SPECS_PATH)
    assert [s.key for s in fresh] == [s.key for s in SPECS]
    assert all(math.isfinite(v) for s in fresh for v in s.peak_tflops.values())
