"""Install pure-Python wheels into a private prefix and write the `mysqlsts` launcher.

Images built from plain Debian packages have no pip, and a wheel is a zip file: unpacking the
pure-Python wheels we ship is all an install needs. Binary wheels (cryptography and its cffi,
zstandard) are not unpacked: the base image's own package provides them (prepare-runtime.sh), and the
install fails if mysqlsts then cannot import what it needs. Runs inside the image build, as root.
Usage: python3 install_wheels.py WHEEL_DIR PREFIX
"""

from __future__ import annotations

import compileall
import importlib
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


def install(wheel_dir: Path, prefix: Path) -> None:
    lib = prefix / "lib"
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not any(w.name.startswith("mysqlsts-") for w in wheels):
        raise SystemExit(f"install_wheels: no mysqlsts wheel in {wheel_dir}")
    for wheel in wheels:
        if not wheel.name.endswith("-none-any.whl"):
            print(f"install_wheels: {wheel.name} is binary; the base image provides it")
            continue
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(lib)
    if not compileall.compile_dir(str(lib), quiet=1):
        raise SystemExit("install_wheels: byte-compiling failed")
    sys.path.insert(0, str(lib))
    for module in ("mysqlsts.cli", "mysqlsts.clone.donor", "mysqlsts.clone.receiver"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SystemExit(f"install_wheels: {module} cannot be imported here: {exc}") from None
    launcher = prefix / "bin" / "mysqlsts"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER.format(python=sys.executable, lib=str(lib)))
    launcher.chmod(0o755)


if __name__ == "__main__":
    install(Path(sys.argv[1]), Path(sys.argv[2]))
