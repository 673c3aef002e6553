"""images/install_wheels.py's choice of binary wheels: a wheel is unpacked into the takeover
image only if one of its tags fits the image's interpreter, glibc and machine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "install_wheels", Path(__file__).resolve().parents[2] / "images" / "install_wheels.py")
assert _SPEC and _SPEC.loader
install_wheels = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(install_wheels)

CP311 = (3, 11)
BOOKWORM = (2, 36)


@pytest.mark.parametrize(("wheel", "fits"), [
    ("kubernetes-37.0.2-py2.py3-none-any.whl", True),
    ("pyyaml-6.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", True),
    ("frozenlist-1.8.0-cp311-cp311-manylinux1_x86_64.manylinux_2_5_x86_64.whl", True),
    ("cryptography-50.0.2-cp311-abi3-manylinux_2_34_x86_64.whl", True),
    ("cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", True),  # stable ABI, older 3.x
    ("pyyaml-6.0.4-cp312-cp312-manylinux_2_17_x86_64.whl", False),  # another Python
    ("x-1.0-cp312-abi3-manylinux_2_17_x86_64.whl", False),  # needs a newer stable ABI
    ("pyyaml-6.0.4-cp311-cp311-manylinux_2_17_aarch64.whl", False),  # another machine
    ("x-1.0-cp311-cp311-manylinux_2_39_x86_64.whl", False),  # a newer glibc than the image's
    ("x-1.0-cp311-cp311-musllinux_1_2_x86_64.whl", False),  # musl, not glibc
    ("x-1.0-cp311-cp311-macosx_11_0_x86_64.whl", False),
])
def test_wheel_fits_cpython_311_on_bookworm_x86_64(wheel: str, fits: bool) -> None:
    assert install_wheels.wheel_fits(wheel, CP311, "x86_64", BOOKWORM) is fits


def test_no_glibc_means_only_pure_and_plain_linux_wheels() -> None:
    assert install_wheels.wheel_fits("a-1-py3-none-any.whl", CP311, "x86_64", None)
    assert not install_wheels.wheel_fits(
        "a-1-cp311-cp311-manylinux_2_17_x86_64.whl", CP311, "x86_64", None)
