"""A fake ``pynvml`` (nvidia-ml-py) for tests on machines without an NVIDIA driver.

It is honest about the real module's shape: the same function names and signatures that labcoat
uses, the same ``NVML_ERROR_*`` codes, and the same exception hierarchy built the same way
(``NVMLError(code)`` returns the ``NVMLError_<Name>`` subclass, which carries ``.value``).
``tests/hardware/test_fake_pynvml.py`` checks all of that against the installed real module.

What the fake machine looks like comes from the environment variable ``FAKE_PYNVML_SCENARIO``
(read at ``nvmlInit``), a JSON object::

    {"init_error": "LIBRARY_NOT_FOUND",            # optional: nvmlInit raises this code
     "devices": [{"name": "NVIDIA H100 PCIe",
                  "memory_total": 85520809984,      # bytes
                  "pci_device_id": 8977,            # 16-bit device id (0x2331)
                  "vendor_id": 4318,                # optional, default 0x10de
                  "uuid": "GPU-...",
                  "errors": {"nvmlDeviceGetMemoryInfo": "NO_PERMISSION"}}]}

Unset means no NVIDIA driver: ``nvmlInit`` raises ``NVMLError_LibraryNotFound``, as the real
module does on a machine without ``libnvidia-ml.so.1``. Names starting with ``FAKE_`` are
fake-only helpers.
"""

from __future__ import annotations

import json
import os
import string
import sys
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
NVML_ERROR_UNKNOWN = 999


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

# ----------------------------------------------------------------------------- fake state

_state: dict = {"initialized": 0, "scenario": None}


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
    return device


# ----------------------------------------------------------------------------- API subset


def nvmlInitWithFlags(flags):
    scenario = _scenario()
    if scenario.get("init_error"):
        raise NVMLError(_code(scenario["init_error"]))
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
    total = int(_device(handle, "nvmlDeviceGetMemoryInfo")["memory_total"])
    return SimpleNamespace(total=total, free=total, used=0)


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
