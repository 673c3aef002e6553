"""images/install_wheels.py's choice of binary wheels: a wheel is unpacked into the takeover
image only if one of its tags fits the image's interpreter, glibc and machine."""

from __future__ import annotations

import importlib.util
import platform
import sys
import zipfile
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


def _wheel(directory: Path, filename: str, files: dict[str, str]) -> None:
    with zipfile.ZipFile(directory / filename, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)


@pytest.fixture
def wheel_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A mysqlsts wheel, the obstore-like binary wheel the init and sidecar images name, and a
    binary wheel the base image provides (zstandard), all tagged for this interpreter."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # install() puts its lib first
    tags = (f"cp{sys.version_info[0]}{sys.version_info[1]}-abi3-"
            f"manylinux_2_17_{platform.machine()}")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "mysqlsts-0.1.0-py3-none-any.whl", {"mysqlsts_fake/__init__.py": ""})
    _wheel(wheels, f"fake_obstore-0.12.1-{tags}.whl", {"fake_obstore/__init__.py": ""})
    _wheel(wheels, f"zstandard-0.23.0-{tags}.whl", {"zstandard_fake/__init__.py": ""})
    return wheels


def test_binary_wheel_unpacks_only_the_named_one_and_imports_it(
    wheel_dir: Path, tmp_path: Path
) -> None:
    prefix = tmp_path / "prefix"
    install_wheels.install(wheel_dir, prefix, False, (), ("fake-obstore",))
    lib = prefix / "lib"
    assert (lib / "fake_obstore" / "__init__.py").exists()
    assert (lib / "mysqlsts_fake" / "__init__.py").exists()
    assert not (lib / "zstandard_fake").exists()  # Debian's, as before
    assert "fake_obstore" in sys.modules  # the import check ran
    assert (prefix / "bin" / "mysqlsts").exists()


def test_binary_wheel_that_does_not_fit_fails_the_install(
    wheel_dir: Path, tmp_path: Path
) -> None:
    for wheel in wheel_dir.glob("fake_obstore-*"):
        wheel.rename(wheel_dir / "fake_obstore-0.12.1-cp311-abi3-macosx_11_0_arm64.whl")
    with pytest.raises(SystemExit, match="fake_obstore-0.12.1-cp311-abi3-macosx.*does not fit"):
        install_wheels.install(wheel_dir, tmp_path / "prefix", False, (), ("fake-obstore",))


def test_binary_wheel_that_is_missing_fails_the_install(
    wheel_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match="no wheel of obstore in"):
        install_wheels.install(wheel_dir, tmp_path / "prefix", False, (), ("obstore",))
