"""A fake ``pynvml`` (nvidia-ml-py) for tests on machines without an NVIDIA driver.

It is honest about the real module's shape: the same function names and signatures that labcoat
uses, the same ``NVML_ERROR_*`` codes, and the same exception hierarchy built the same way
(``NVMLError(code)`` returns the ``NVMLError_<Name>`` subclass, which carries ``.value``).
``tests/hardware/test_fake_pynvml.py`` checks all of that against the installed real module.

What the fake machine looks like comes from the environment variable ``FAKE_PYNVML_SCENARIO``
(read at ``nvmlInit``), a JSON object::

    {"init_error": "LIBRARY_NOT_FOUND",            # optional: nvmlInit raises this code
     "errors": {"nvmlDeviceGetCount": "UNKNOWN"},  # optional: system-level failures
     "devices": [{"name": "NVIDIA H100 PCIe",
                  "memory_total": 85520809984,      # bytes
                  "pci_device_id": 8977,            # 16-bit device id (0x2331)
                  "vendor_id": 4318,                # optional, default 0x10de
                  "uuid": "GPU-...",
                  "errors": {"nvmlDeviceGetMemoryInfo": "NO_PERMISSION"},
                  # optional, for samplers: one sequence per reading; the n-th call returns
                  # item n (cycling), so means over whole cycles are exact
                  "series": {"util_gpu_pct": [10, 30], "util_memory_pct": [5, 15],
                             "memory_used_bytes": [1000, 3000],   # default [0]
                             "power_mw": [100000, 300000],        # milliwatts, as NVML
                             "sm_clock_mhz": [990, 1980],         # also graphics_/mem_/video_
                             "temperature_c": [40, 60],
                             "pcie_tx_kbps": [100, 300], "pcie_rx_kbps": [200, 400],
                             "clocks_event_reasons": [0, 4]},     # bitmask per call
                  "max_clock_mhz": {"sm": 1980},    # nvmlDeviceGetMaxClockInfo per clock type
                  "lost_after": 3,                  # optional: every sampled reading answers 3
                                                    # calls; the 4th, and any call after it, on
                                                    # this GPU raises NVMLError_GpuIsLost
                  "delay_ms": {"nvmlDeviceGetPcieThroughput": 20}}]}  # optional: slow calls

A reading whose sequence (or max clock) is absent raises ``NVMLError_NotSupported``, as a GPU that
lacks the sensor does. ``errors`` takes precedence over everything else for that function.

Unset means no NVIDIA driver: ``nvmlInit`` raises ``NVMLError_LibraryNotFound``, as the real
module does on a machine without ``libnvidia-ml.so.1``. Names starting with ``FAKE_`` are
fake-only helpers.
"""

from __future__ import annotations

import json
import os
import string
import sys
import time as _time
from ctypes import Structure as _Structure
from ctypes import c_uint as _c_uint
from ctypes import c_ulonglong as _c_ulonglong
from types import SimpleNamespace

FAKE_SCENARIO_ENV = "FAKE_PYNVML_SCENARIO"

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22
NVML_ERROR_INSUFFICIENT_RESOURCES = 23
NVML_ERROR_FREQ_NOT_SUPPORTED = 24
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_DEPRECATED = 26
NVML_ERROR_NOT_READY = 27
NVML_ERROR_GPU_NOT_FOUND = 28
NVML_ERROR_INVALID_STATE = 29
NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30
NVML_ERROR_UNKNOWN = 999

NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3

NVML_TEMPERATURE_GPU = 0

NVML_PCIE_UTIL_TX_BYTES = 0
NVML_PCIE_UTIL_RX_BYTES = 1

nvmlTemperature_v1 = 0x100000C

nvmlClocksEventReasonGpuIdle = 0x0000000000000001
nvmlClocksEventReasonApplicationsClocksSetting = 0x0000000000000002
nvmlClocksEventReasonSwPowerCap = 0x0000000000000004
nvmlClocksEventReasonHwSlowdown = 0x0000000000000008
nvmlClocksEventReasonSyncBoost = 0x0000000000000010
nvmlClocksEventReasonSwThermalSlowdown = 0x0000000000000020
nvmlClocksEventReasonHwThermalSlowdown = 0x0000000000000040
nvmlClocksEventReasonHwPowerBrakeSlowdown = 0x0000000000000080
nvmlClocksEventReasonDisplayClockSetting = 0x0000000000000100
nvmlClocksEventReasonNone = 0x0000000000000000


class NVMLError(Exception):
    """Same construction as the real class: ``NVMLError(code)`` -> the code's subclass."""

    _valClassMapping: dict[int, type] = {}
    _errcode_to_string = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size",
        NVML_ERROR_INSUFFICIENT_POWER: "Insufficient External Power",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_IRQ_ISSUE: "Interrupt Request Issue",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_CORRUPTED_INFOROM: "Corrupted infoROM",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_RESET_REQUIRED: "GPU requires restart",
        NVML_ERROR_OPERATING_SYSTEM: "The operating system has blocked the request.",
        NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
        NVML_ERROR_MEMORY: "Insufficient Memory",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

    def __new__(typ, value):  # noqa: N804 - mirrors the real signature
        if typ == NVMLError:
            typ = NVMLError._valClassMapping.get(value, typ)
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self) -> str:
        return NVMLError._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other):
        return self.value == other.value


def _make_error_classes() -> None:
    """Build ``NVMLError_<Name>`` for every ``NVML_ERROR_<NAME>`` exactly as the real module does."""
    module = sys.modules[__name__]
    for err_name in [x for x in dir(module) if x.startswith("NVML_ERROR_")]:
        class_name = "NVMLError_" + string.capwords(
            err_name.replace("NVML_ERROR_", ""), "_"
        ).replace("_", "")
        err_val = getattr(module, err_name)

        def gen_new(val):
            def new(typ, *args):
                return NVMLError.__new__(typ, val)

            return new

        cls = type(class_name, (NVMLError,), {"__new__": gen_new(err_val)})
        cls.__module__ = __name__
        setattr(module, class_name, cls)
        NVMLError._valClassMapping[err_val] = cls


_make_error_classes()


class c_nvmlUtilization_t(_Structure):  # noqa: N801 - the real name
    _fields_ = [("gpu", _c_uint), ("memory", _c_uint)]


class c_nvmlMemory_t(_Structure):  # noqa: N801 - the real name
    _fields_ = [("total", _c_ulonglong), ("free", _c_ulonglong), ("used", _c_ulonglong)]


class c_nvmlMemory_v2_t(_Structure):  # noqa: N801 - the real name
    _fields_ = [
        ("version", _c_uint),
        ("total", _c_ulonglong),
        ("reserved", _c_ulonglong),
        ("free", _c_ulonglong),
        ("used", _c_ulonglong),
    ]


# ----------------------------------------------------------------------------- fake state

_state: dict = {"initialized": 0, "scenario": None, "calls": {}, "lost": set()}

_CLOCK_NAMES = {NVML_CLOCK_GRAPHICS: "graphics", NVML_CLOCK_SM: "sm", NVML_CLOCK_MEM: "mem"}
_CLOCK_NAMES[NVML_CLOCK_VIDEO] = "video"


def _code(name: str) -> int:
    return globals()[f"NVML_ERROR_{name}"]


def _scenario() -> dict:
    raw = os.environ.get(FAKE_SCENARIO_ENV)
    if raw is None:
        return {"init_error": "LIBRARY_NOT_FOUND", "devices": []}
    return json.loads(raw)


def _check_init() -> dict:
    if not _state["initialized"]:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return _state["scenario"]


def _device(handle: object, function: str) -> dict:
    scenario = _check_init()
    if not isinstance(handle, SimpleNamespace) or not hasattr(handle, "fake_index"):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    device = scenario["devices"][handle.fake_index]
    error = device.get("errors", {}).get(function)
    if error:
        raise NVMLError(_code(error))
    if handle.fake_index in _state["lost"]:
        raise NVMLError(NVML_ERROR_GPU_IS_LOST)
    delay_ms = device.get("delay_ms", {}).get(function)
    if delay_ms:
        _time.sleep(delay_ms / 1000)
    return device


def _next(handle: object, function: str, reading: str, *names: str) -> list:
    """The next value of each sequence ``names`` for one call of ``reading`` (one counter).

    Counts the call toward ``lost_after``; a missing sequence raises NotSupported.
    """
    device = _device(handle, function)
    series = device.get("series", {})
    if any(name not in series for name in names):
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    key = (handle.fake_index, reading)
    count = _state["calls"].get(key, 0)
    lost_after = device.get("lost_after")
    if lost_after is not None and count >= int(lost_after):
        _state["lost"].add(handle.fake_index)
        raise NVMLError(NVML_ERROR_GPU_IS_LOST)
    _state["calls"][key] = count + 1
    return [series[name][count % len(series[name])] for name in names]


# ----------------------------------------------------------------------------- API subset


def nvmlInitWithFlags(flags):
    scenario = _scenario()
    if scenario.get("init_error"):
        raise NVMLError(_code(scenario["init_error"]))
    if not _state["initialized"]:
        _state["calls"] = {}
        _state["lost"] = set()
    _state["scenario"] = scenario
    _state["initialized"] += 1


def nvmlInit():
    nvmlInitWithFlags(0)


def nvmlShutdown():
    _check_init()
    _state["initialized"] -= 1


def nvmlDeviceGetCount():
    scenario = _check_init()
    error = scenario.get("errors", {}).get("nvmlDeviceGetCount")
    if error:
        raise NVMLError(_code(error))
    return len(scenario["devices"])


def nvmlDeviceGetHandleByIndex(index):
    scenario = _check_init()
    if not 0 <= index < len(scenario["devices"]):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    handle = SimpleNamespace(fake_index=index)
    _device(handle, "nvmlDeviceGetHandleByIndex")
    return handle


def nvmlDeviceGetName(handle):
    return _device(handle, "nvmlDeviceGetName")["name"]


def nvmlDeviceGetMemoryInfo(handle, version=None):
    device = _device(handle, "nvmlDeviceGetMemoryInfo")
    total = int(device["memory_total"])
    if "memory_used_bytes" in device.get("series", {}):
        (used,) = _next(handle, "nvmlDeviceGetMemoryInfo", "memory", "memory_used_bytes")
    else:
        used = 0
    if version:
        return c_nvmlMemory_v2_t(version, total, 0, total - int(used), int(used))
    return c_nvmlMemory_t(total, total - int(used), int(used))


def nvmlDeviceGetPciInfo(handle):
    device = _device(handle, "nvmlDeviceGetPciInfo")
    vendor = int(device.get("vendor_id", 0x10DE))
    return SimpleNamespace(
        busId=f"00000000:{0x18 + handle.fake_index:02X}:00.0",
        domain=0,
        bus=0x18 + handle.fake_index,
        device=0,
        pciDeviceId=(int(device["pci_device_id"]) << 16) | vendor,
        pciSubSystemId=0,
    )


def nvmlDeviceGetUUID(handle):
    device = _device(handle, "nvmlDeviceGetUUID")
    return device.get("uuid", f"GPU-00000000-0000-0000-0000-{handle.fake_index:012d}")


def nvmlDeviceGetUtilizationRates(handle):
    gpu, memory = _next(
        handle, "nvmlDeviceGetUtilizationRates", "utilization", "util_gpu_pct", "util_memory_pct"
    )
    return c_nvmlUtilization_t(int(gpu), int(memory))


def nvmlDeviceGetPowerUsage(handle):
    (milliwatts,) = _next(handle, "nvmlDeviceGetPowerUsage", "power", "power_mw")
    return int(milliwatts)


def nvmlDeviceGetClockInfo(handle, type):
    name = _CLOCK_NAMES.get(type)
    if name is None:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    (mhz,) = _next(handle, "nvmlDeviceGetClockInfo", f"clock_{name}", f"{name}_clock_mhz")
    return int(mhz)


def nvmlDeviceGetMaxClockInfo(handle, type):
    name = _CLOCK_NAMES.get(type)
    if name is None:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    device = _device(handle, "nvmlDeviceGetMaxClockInfo")
    mhz = device.get("max_clock_mhz", {}).get(name)
    if mhz is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return int(mhz)


def _temperature(handle, sensor, function: str) -> int:
    if sensor != NVML_TEMPERATURE_GPU:
        _device(handle, function)
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    (celsius,) = _next(handle, function, "temperature", "temperature_c")
    return int(celsius)


def nvmlDeviceGetTemperatureV(handle, sensor, version=nvmlTemperature_v1):
    if version != nvmlTemperature_v1:
        raise NVMLError(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    return _temperature(handle, sensor, "nvmlDeviceGetTemperatureV")


def nvmlDeviceGetTemperature(handle, sensor):
    return _temperature(handle, sensor, "nvmlDeviceGetTemperature")


def nvmlDeviceGetPcieThroughput(device, counter):
    names = {NVML_PCIE_UTIL_TX_BYTES: "pcie_tx_kbps", NVML_PCIE_UTIL_RX_BYTES: "pcie_rx_kbps"}
    if counter not in names:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    (kbps,) = _next(device, "nvmlDeviceGetPcieThroughput", names[counter], names[counter])
    return int(kbps)


def nvmlDeviceGetCurrentClocksEventReasons(handle):
    (mask,) = _next(
        handle, "nvmlDeviceGetCurrentClocksEventReasons", "clocks_event", "clocks_event_reasons"
    )
    return int(mask)


def nvmlDeviceGetCurrentClocksThrottleReasons(handle):
    (mask,) = _next(
        handle,
        "nvmlDeviceGetCurrentClocksThrottleReasons",
        "clocks_event",
        "clocks_event_reasons",
    )
    return int(mask)
