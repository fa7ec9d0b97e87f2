"""The fake pynvml must look like the real one, or the detect tests prove nothing."""

from __future__ import annotations

import importlib
import inspect

import pytest

from tests.hardware.conftest import load_fake_pynvml

USED_BY_DETECT = [
    "nvmlInit",
    "nvmlShutdown",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetPciInfo",
    "nvmlDeviceGetUUID",
    "NVMLError",
    "NVMLError_LibraryNotFound",
    "NVMLError_NoPermission",
    "NVMLError_DriverNotLoaded",
    "NVMLError_GpuIsLost",
    "NVMLError_LibRmVersionMismatch",
]


@pytest.fixture
def real_and_fake(monkeypatch: pytest.MonkeyPatch):
    real = importlib.import_module("pynvml")
    assert "site-packages" in (real.__file__ or ""), "expected the installed nvidia-ml-py"
    fake = load_fake_pynvml(monkeypatch)
    return real, fake


def test_every_public_fake_name_exists_in_the_real_module(real_and_fake) -> None:
    real, fake = real_and_fake
    public = [n for n in vars(fake) if not n.startswith(("_", "FAKE_"))]
    modules_and_helpers = {"annotations", "json", "os", "string", "sys", "SimpleNamespace"}
    missing = [n for n in public if n not in modules_and_helpers and not hasattr(real, n)]
    assert not missing
    assert all(hasattr(fake, n) and hasattr(real, n) for n in USED_BY_DETECT)


def test_error_codes_and_class_names_match(real_and_fake) -> None:
    real, fake = real_and_fake
    for name in (n for n in vars(fake) if n.startswith("NVML_ERROR_")):
        assert getattr(fake, name) == getattr(real, name), name
        code = getattr(real, name)
        real_cls = real.NVMLError._valClassMapping[code]
        fake_cls = fake.NVMLError._valClassMapping[code]
        assert real_cls.__name__ == fake_cls.__name__
        assert fake_cls.__module__ == real_cls.__module__ == "pynvml"


@pytest.mark.parametrize(
    "code_name",
    ["NVML_ERROR_LIBRARY_NOT_FOUND", "NVML_ERROR_NO_PERMISSION", "NVML_ERROR_GPU_IS_LOST"],
)
def test_exceptions_behave_the_same(real_and_fake, code_name: str) -> None:
    real, fake = real_and_fake
    for module in (real, fake):
        code = getattr(module, code_name)
        exc = module.NVMLError(code)
        cls = module.NVMLError._valClassMapping[code]
        assert type(exc) is cls and isinstance(exc, module.NVMLError)
        assert exc.value == code
        assert cls().value == code  # subclasses construct without arguments too
    assert str(real.NVMLError(getattr(real, code_name))) == str(
        fake.NVMLError(getattr(fake, code_name))
    )


def test_fake_without_scenario_is_a_machine_without_driver(real_and_fake) -> None:
    real, fake = real_and_fake
    with pytest.raises(fake.NVMLError_LibraryNotFound):
        fake.nvmlInit()
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()


def test_function_signatures_match(real_and_fake) -> None:
    real, fake = real_and_fake
    functions = [n for n in vars(fake) if n.startswith("nvml") and callable(getattr(fake, n))]
    assert len(functions) >= 9
    for name in functions:
        real_sig = inspect.signature(getattr(real, name))
        fake_sig = inspect.signature(getattr(fake, name))
        assert str(real_sig) == str(fake_sig), name
