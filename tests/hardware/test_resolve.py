"""resolve_gpu / get_spec: every variant from realistic reported names, and refusals."""

from __future__ import annotations

import pytest

from toolkit.errors import InputError
from toolkit.hardware.specs import (
    UnknownGpuError,
    all_specs,
    get_spec,
    resolve,
    resolve_gpu,
)

MIB = 1024**2

# (reported name as NVML / torch / ROCm prints it, memory total MiB as reported, PCI device id, key)
REPORTED = [
    ("Tesla V100-SXM2-16GB", 16160, 0x1DB1, "v100-sxm2-16gb"),
    ("Tesla V100-SXM2-32GB", 32510, 0x1DB5, "v100-sxm2-32gb"),
    ("Tesla V100-PCIE-16GB", 16160, 0x1DB4, "v100-pcie-16gb"),
    ("Tesla V100-PCIE-32GB", 32510, 0x1DB6, "v100-pcie-32gb"),
    ("Tesla V100S-PCIE-32GB", 32510, 0x1DF6, "v100s-pcie-32gb"),
    ("NVIDIA A100-SXM4-40GB", 40960, 0x20B0, "a100-sxm-40gb"),
    ("A100-SXM4-40GB", 40536, 0x20B0, "a100-sxm-40gb"),  # older drivers: no "NVIDIA "
    ("NVIDIA A100-SXM4-80GB", 81920, 0x20B2, "a100-sxm-80gb"),
    ("NVIDIA A100-PCIE-40GB", 40960, 0x20F1, "a100-pcie-40gb"),
    ("NVIDIA A100 80GB PCIe", 81920, 0x20B5, "a100-pcie-80gb"),
    ("NVIDIA A10", 23028, 0x2236, "a10"),
    ("NVIDIA A10G", 23028, 0x2237, "a10g"),
    ("NVIDIA L4", 23034, 0x27B8, "l4"),
    ("NVIDIA L40", 46068, 0x26B5, "l40"),
    ("NVIDIA L40S", 46068, 0x26B9, "l40s"),
    ("NVIDIA GeForce RTX 3090", 24576, 0x2204, "rtx-3090"),
    ("NVIDIA GeForce RTX 4090", 24564, 0x2684, "rtx-4090"),
    ("NVIDIA H100 80GB HBM3", 81559, 0x2330, "h100-sxm"),
    ("NVIDIA H100 PCIe", 81559, 0x2331, "h100-pcie"),
    ("NVIDIA H100 NVL", 95830, 0x2321, "h100-nvl"),
    ("NVIDIA H200", 143771, 0x2335, "h200"),
    ("NVIDIA H200 NVL", 143771, 0x233B, "h200-nvl"),
    ("NVIDIA GH200 480GB", 97871, 0x2342, "gh200-96gb"),
    ("NVIDIA GH200 120GB", 97871, 0x2342, "gh200-96gb"),
    ("NVIDIA GH200 144G HBM3e", 146592, 0x2348, "gh200-144gb"),
    ("NVIDIA H20", 97871, 0x2329, "h20"),
    ("NVIDIA B200", 183359, 0x2901, "b200"),
    ("NVIDIA GB200", 189471, 0x2941, "gb200"),
    ("AMD Instinct MI250X", 65520, 0x7408, "mi250x-gcd"),
    ("AMD Instinct MI300X", 196288, 0x74A1, "mi300x"),
    ("AMD Instinct MI300X VF", 196288, 0x74B5, "mi300x"),
    ("AMD Instinct MI325X", 262128, 0x74A5, "mi325x"),
]


@pytest.mark.parametrize("name,mib,pci,key", REPORTED, ids=[r[0] for r in REPORTED])
def test_resolves_with_everything_reported(name: str, mib: int, pci: int, key: str) -> None:
    assert resolve_gpu(name, memory_bytes=mib * MIB, pci_device_id=pci).key == key


@pytest.mark.parametrize("name,mib,pci,key", REPORTED, ids=[r[0] for r in REPORTED])
def test_resolves_from_memory_without_pci(name: str, mib: int, pci: int, key: str) -> None:
    """torch.cuda reports name + memory but no product id: still exact."""
    assert resolve_gpu(name, memory_bytes=mib * MIB).key == key


UNIQUE_NAMES = [r for r in REPORTED if not r[0].startswith("AMD Instinct MI250X")]


@pytest.mark.parametrize("name,mib,pci,key", UNIQUE_NAMES, ids=[r[0] for r in UNIQUE_NAMES])
def test_resolves_from_name_alone(name: str, mib: int, pci: int, key: str) -> None:
    assert resolve_gpu(name).key == key


def test_every_required_gpu_is_covered_by_a_realistic_name() -> None:
    required = {
        "v100-sxm2-16gb", "v100-sxm2-32gb", "v100-pcie-16gb", "v100-pcie-32gb",
        "a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-40gb", "a100-pcie-80gb",
        "a10", "a10g", "l4", "l40", "l40s", "rtx-3090", "rtx-4090",
        "h100-sxm", "h100-pcie", "h100-nvl", "h200", "gh200-96gb", "gh200-144gb", "h20",
        "b200", "gb200", "mi250x-gcd", "mi300x", "mi325x",
    }  # fmt: skip
    assert required <= {key for *_, key in REPORTED}


# ----------------------------------------------------------------------------- look-alikes


@pytest.mark.parametrize(
    "name,key",
    [
        ("NVIDIA A10", "a10"),
        ("NVIDIA A10G", "a10g"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA L40", "l40"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA H20", "h20"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA H200 NVL", "h200-nvl"),
    ],
)
def test_look_alike_names_are_not_confused(name: str, key: str) -> None:
    assert resolve_gpu(name).key == key


def test_a10_is_never_an_a100_even_with_a100_memory() -> None:
    with pytest.raises(UnknownGpuError, match="fits none of a10 24 GiB"):
        resolve_gpu("NVIDIA A10", memory_bytes=81920 * MIB)


def test_name_and_pci_id_that_disagree_are_refused() -> None:
    with pytest.raises(UnknownGpuError, match="0x2330 is h100-sxm"):
        resolve_gpu("NVIDIA H100 PCIe", pci_device_id=0x2330)
    with pytest.raises(UnknownGpuError, match="refusing to guess"):
        resolve_gpu("NVIDIA L40", pci_device_id=0x26B9)  # an L40S id


def test_h100_pcie_with_nvl_memory_is_refused() -> None:
    with pytest.raises(UnknownGpuError, match="93.6 GiB"):
        resolve_gpu("NVIDIA H100 PCIe", memory_bytes=95830 * MIB)


# ----------------------------------------------------------------------------- family names


@pytest.mark.parametrize(
    "mib,pci,key",
    [(81559, 0x2330, "h100-sxm"), (81559, 0x2331, "h100-pcie"), (95830, 0x2321, "h100-nvl")],
)
def test_generic_h100_name_resolved_by_pci_id(mib: int, pci: int, key: str) -> None:
    found = resolve("NVIDIA H100", memory_bytes=mib * MIB, pci_device_id=pci)
    assert found.spec.key == key
    assert f"PCI device id 0x{pci:04x}" in found.how


def test_generic_h100_name_resolved_by_memory_when_it_decides() -> None:
    found = resolve("NVIDIA H100", memory_bytes=95830 * MIB)
    assert found.spec.key == "h100-nvl"
    assert "memory" in found.how


def test_generic_h100_name_with_80gb_and_no_pci_is_ambiguous() -> None:
    with pytest.raises(UnknownGpuError, match="ambiguous.*h100-sxm, h100-pcie"):
        resolve_gpu("NVIDIA H100", memory_bytes=81559 * MIB)


@pytest.mark.parametrize(
    "mib,pci,key",
    [
        (40960, 0x20B0, "a100-sxm-40gb"),
        (81920, 0x20B2, "a100-sxm-80gb"),
        (40960, 0x20B1, "a100-pcie-40gb"),
        (81920, 0x20B5, "a100-pcie-80gb"),
    ],
)
def test_generic_a100_name_resolved_by_pci_id(mib: int, pci: int, key: str) -> None:
    assert resolve_gpu("NVIDIA A100", memory_bytes=mib * MIB, pci_device_id=pci).key == key


def test_generic_a100_name_by_memory_alone_is_ambiguous_between_sxm_and_pcie() -> None:
    with pytest.raises(UnknownGpuError, match="a100-sxm-80gb, a100-pcie-80gb"):
        resolve_gpu("NVIDIA A100", memory_bytes=81920 * MIB)


@pytest.mark.parametrize("mib,key", [(16160, "v100-sxm2-16gb"), (32510, "v100-sxm2-32gb")])
def test_v100_sxm2_family_resolved_by_memory(mib: int, key: str) -> None:
    assert resolve_gpu("Tesla V100-SXM2", memory_bytes=mib * MIB).key == key


@pytest.mark.parametrize("mib,key", [(97871, "gh200-96gb"), (146592, "gh200-144gb")])
def test_gh200_family_resolved_by_memory(mib: int, key: str) -> None:
    assert resolve_gpu("NVIDIA GH200", memory_bytes=mib * MIB).key == key


def test_mi250x_name_needs_memory_to_tell_gcd_from_module() -> None:
    with pytest.raises(UnknownGpuError, match="mi250x, mi250x-gcd"):
        resolve_gpu("AMD Instinct MI250X")
    assert resolve_gpu("AMD Instinct MI250X", memory_bytes=128 * 1024 * MIB).key == "mi250x"


def test_unknown_name_with_known_pci_id_resolves_by_id() -> None:
    found = resolve("NVIDIA Graphics Device", memory_bytes=81559 * MIB, pci_device_id=0x2330)
    assert found.spec.key == "h100-sxm"
    assert "PCI device id 0x2330" in found.how


def test_pci_id_unknown_to_us_does_not_override_a_name() -> None:
    assert resolve_gpu("NVIDIA H100 PCIe", pci_device_id=0x2336).key == "h100-pcie"


# ----------------------------------------------------------------------------- unknowns


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA A1000",
        "NVIDIA GeForce RTX 4090 D",
        "NVIDIA GeForce RTX 4080",
        "NVIDIA H800",
        "Tesla T4",
        "AMD Instinct MI250X/MI250",
        "",
    ],
)
def test_unknown_names_are_refused_with_keys_and_peak_tflops_hint(name: str) -> None:
    with pytest.raises(UnknownGpuError) as info:
        resolve_gpu(name, memory_bytes=24 * 1024 * MIB)
    message = str(info.value)
    assert "h100-sxm" in message and "--peak-tflops" in message
    assert isinstance(info.value, InputError)


def test_mig_slice_is_refused() -> None:
    with pytest.raises(UnknownGpuError, match="MIG slice"):
        resolve_gpu("NVIDIA A100-SXM4-40GB MIG 1g.5gb", memory_bytes=4864 * MIB)


def test_partitioned_mi300x_is_refused() -> None:
    with pytest.raises(UnknownGpuError, match="partitioned"):
        resolve_gpu("AMD Instinct MI300X", memory_bytes=24 * 1024 * MIB)


# ----------------------------------------------------------------------------- get_spec


@pytest.mark.parametrize(
    "text,key",
    [
        ("h100-sxm", "h100-sxm"),
        ("H100-PCIE", "h100-pcie"),
        ("NVIDIA H100 NVL 94GB", "h100-nvl"),
        ("nvidia h100 80gb hbm3", "h100-sxm"),
        ("H100 SXM", "h100-sxm"),
        ("A100-SXM4-80GB", "a100-sxm-80gb"),
        ("RTX 4090", "rtx-4090"),
        ("mi300x", "mi300x"),
        ("AMD Instinct MI300X", "mi300x"),
        ("mi250x", "mi250x"),
        ("l40s", "l40s"),
        ("L40", "l40"),
    ],
)
def test_get_spec_accepts_key_name_alias_or_reported_name(text: str, key: str) -> None:
    assert get_spec(text).key == key


def test_get_spec_resolves_every_key_and_display_name() -> None:
    for spec in all_specs():
        assert get_spec(spec.key) is not None and get_spec(spec.key).key == spec.key
        assert get_spec(spec.key.upper()).key == spec.key


def test_get_spec_unknown_lists_keys_and_suggests_peak_tflops() -> None:
    with pytest.raises(UnknownGpuError) as info:
        get_spec("h100-sxm6")
    message = str(info.value)
    assert "unknown GPU 'h100-sxm6'" in message
    assert all(spec.key in message for spec in all_specs())
    assert "--peak-tflops" in message


def test_get_spec_family_name_is_ambiguous_not_guessed() -> None:
    with pytest.raises(UnknownGpuError, match="ambiguous.*h100-sxm, h100-pcie, h100-nvl"):
        get_spec("H100")
