"""Install wheels into a private prefix and write the `mysqlsts` launcher.

Images built from plain Debian packages have no pip, and a wheel is a zip file: unpacking the
wheels we ship is all an install needs. By default only pure-Python wheels are unpacked: the
base image's own packages provide the binary ones (cryptography and its cffi, zstandard;
see prepare-runtime.sh). `--binary-wheel NAME` (the init and sidecar images: obstore, which
Debian does not package, for s3:// stores) unpacks that one binary wheel too, and imports it
afterwards. With --binary (the takeover image: the `kubernetes` client needs pydantic-core,
aiohttp, ...) every binary wheel is unpacked. A binary wheel is unpacked only if its tags fit
this interpreter (CPython 3.x ABI, glibc version, machine), else the install fails. Either way it
fails if the --check modules cannot then be imported. Runs inside the image build, as root.
Usage: python3 install_wheels.py [--binary | --binary-wheel NAME...] [--check MODULE]...
                                 WHEEL_DIR PREFIX
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import os
import platform
import sys
import zipfile
from pathlib import Path

LAUNCHER = """#!{python} -I
# mysqlsts launcher: the package lives in its own directory, outside the system's Python.
import sys
sys.path.insert(0, {lib!r})
from mysqlsts.cli import main
sys.exit(main())
"""

DEFAULT_CHECKS = ("mysqlsts.cli", "mysqlsts.clone.donor", "mysqlsts.clone.receiver")
# The old manylinux names and the glibc each stands for (PEP 600).
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def glibc_version() -> tuple[int, int] | None:
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    except (ValueError, OSError):
        return None
    name, _, version = found.partition(" ")
    if name != "glibc":
        return None
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def platform_fits(tag: str, machine: str, glibc: tuple[int, int] | None) -> bool:
    if tag == "any":
        return True
    if tag == f"linux_{machine}":
        return True
    if glibc is None or not tag.endswith(f"_{machine}"):
        return False
    base = tag[: -len(machine) - 1]
    if base in LEGACY_MANYLINUX:
        return LEGACY_MANYLINUX[base] <= glibc
    parts = base.split("_")  # manylinux_2_34
    if len(parts) == 3 and parts[0] == "manylinux" and parts[1].isdigit() and parts[2].isdigit():
        return (int(parts[1]), int(parts[2])) <= glibc
    return False


def interpreter_fits(python: str, abi: str, version: tuple[int, int]) -> bool:
    major, minor = version
    if abi == "none":  # pure Python, or a binary that links no libpython
        return python in (f"py{major}", f"py{major}{minor}", f"cp{major}{minor}")
    if abi == f"cp{major}{minor}":
        return python == f"cp{major}{minor}"
    if abi == "abi3" and python.startswith(f"cp{major}") and python[2:].isdigit():
        return int(python[len(f"cp{major}"):] or 0) <= minor  # stable ABI: built for an older 3.x
    return False


def wheel_fits(filename: str, version: tuple[int, int], machine: str,
               glibc: tuple[int, int] | None) -> bool:
    """Whether a wheel's compressed tag sets (PEP 425, `py2.py3-none-any`) include a tag this
    interpreter supports."""
    pythons, abis, platforms = filename[: -len(".whl")].split("-")[-3:]
    return any(
        interpreter_fits(python, abi, version) and platform_fits(plat, machine, glibc)
        for python in pythons.split(".") for abi in abis.split(".")
        for plat in platforms.split(".")
    )


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: `Fake_Obstore` → fake-obstore."""
    return name.lower().replace("_", "-").replace(".", "-")


def distribution(filename: str) -> str:
    """A wheel's distribution name, normalised: `obstore-0.12.1-cp311-...` → obstore."""
    return normalise(filename.split("-")[0])


def install(wheel_dir: Path, prefix: Path, binary: bool, checks: tuple[str, ...],
            binary_wheels: tuple[str, ...] = ()) -> None:
    lib = prefix / "lib"
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not any(w.name.startswith("mysqlsts-") for w in wheels):
        raise SystemExit(f"install_wheels: no mysqlsts wheel in {wheel_dir}")
    wanted = {normalise(name) for name in binary_wheels}
    missing = wanted - {distribution(w.name) for w in wheels}
    if missing:
        raise SystemExit(f"install_wheels: no wheel of {', '.join(sorted(missing))} in {wheel_dir}")
    version = sys.version_info[:2]
    machine, glibc = platform.machine(), glibc_version()
    for wheel in wheels:
        if not wheel.name.endswith("-none-any.whl"):
            if not binary and distribution(wheel.name) not in wanted:
                print(f"install_wheels: {wheel.name} is binary; the base image provides it")
                continue
            if not wheel_fits(wheel.name, version, machine, glibc):
                raise SystemExit(
                    f"install_wheels: {wheel.name} does not fit CPython "
                    f"{version[0]}.{version[1]} on {machine} (glibc {glibc}); build the wheels "
                    "on a host of the image's architecture and Python")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(lib)
    if not compileall.compile_dir(str(lib), quiet=1):
        raise SystemExit("install_wheels: byte-compiling failed")
    sys.path.insert(0, str(lib))
    # A binary wheel named on purpose must load here (its shared library, its glibc).
    for module in (*checks, *(name.replace("-", "_") for name in sorted(wanted))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SystemExit(f"install_wheels: {module} cannot be imported here: {exc}") from None
    launcher = prefix / "bin" / "mysqlsts"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER.format(python=sys.executable, lib=str(lib)))
    launcher.chmod(0o755)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", action="store_true",
                        help="also unpack binary wheels whose tags fit this interpreter")
    parser.add_argument("--binary-wheel", action="append", metavar="NAME", default=[],
                        help="also unpack this distribution's binary wheel (it must fit)")
    parser.add_argument("--check", action="append", metavar="MODULE",
                        help=f"import this after installing (default: {', '.join(DEFAULT_CHECKS)})")
    parser.add_argument("wheel_dir", type=Path)
    parser.add_argument("prefix", type=Path)
    args = parser.parse_args()
    install(args.wheel_dir, args.prefix, args.binary, tuple(args.check or DEFAULT_CHECKS),
            tuple(args.binary_wheel))


if __name__ == "__main__":
    main()
