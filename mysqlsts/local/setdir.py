"""A set's directory: made once (secrets, the ConfigMap copy, spec.json), locked while `up`
makes or resumes it, removed by `down --purge`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import mysqlsts
from mysqlsts.adapters.fs import atomic_write
from mysqlsts.errors import ConfigError
from mysqlsts.local.spec import SECRET_NAMES, SetLayout, SetSpec
from mysqlsts.local.store import write_spec

CNF_NAMES = ("master.cnf", "slave.cnf")


def default_cnf_dir() -> Path:
    """The project's MariaDB role cnf files, in the checkout the package runs from (they are
    not package data: an installed wheel needs --cnf-dir)."""
    candidate = Path(mysqlsts.__file__).resolve().parent.parent / "images" / "cnf" / "mariadb"
    if all((candidate / name).is_file() for name in CNF_NAMES):
        return candidate
    raise ConfigError(
        "cannot find the default master.cnf/slave.cnf (images/cnf/mariadb); pass --cnf-dir"
    )


@contextlib.contextmanager
def up_lock(layout: SetLayout) -> Iterator[None]:
    """One `up` at a time creates or resumes a set, until its supervisor runs. The loser of a
    race on a new directory is told so (it would otherwise find a half-made set and take it
    for a stranger's files); on an existing set it waits its turn, a few seconds at most.

    The lock is an flock on the directory itself: a lock file would make a new directory
    look non-empty. A directory this `up` made is removed again if it fails before using it.
    """
    made = not layout.root.exists()
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(layout.root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ConfigError(f"cannot create {layout.root}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not layout.spec.exists():
                raise ConfigError(
                    f"another `local up` is creating {layout.root}; wait for it, then run "
                    "`local status`"
                ) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        except BaseException:
            if made:
                with contextlib.suppress(OSError):
                    layout.root.rmdir()  # only while empty: nothing else is touched
            raise
    finally:
        os.close(fd)


def check_cnf_dir(layout: SetLayout, cnf_dir: Path) -> None:
    """An existing set keeps the ConfigMap it was created with: `--cnf-dir` applied to a running
    set would reach only the pods created after it, so a different one is refused."""
    differing = [name for name in CNF_NAMES
                 if _read_cnf(cnf_dir / name) != _read_cnf(layout.config_map / name)]
    if differing:
        raise ConfigError(
            f"{layout.root} keeps the cnf it was created with; --cnf-dir {cnf_dir} has another "
            f"{' and '.join(differing)} (edit {layout.config_map} instead: pods read it when "
            "they are created)"
        )


def _read_cnf(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def prepare(layout: SetLayout, spec: SetSpec, cnf_dir: Path) -> None:
    """Create the set's files once: secrets (0600), the ConfigMap copy, spec.json."""
    if layout.root.exists() and not layout.spec.exists() and any(layout.root.iterdir()):
        raise ConfigError(f"{layout.root} is not empty and holds no local set; refusing to use it")
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        layout.secrets.mkdir(mode=0o700, exist_ok=True)
        for name in SECRET_NAMES:
            path = layout.secret(name)
            if not path.exists():
                atomic_write(path, secrets.token_urlsafe(24) + "\n", mode=0o600)
        layout.config_map.mkdir(exist_ok=True)
        for name in CNF_NAMES:
            if not (layout.config_map / name).exists():
                atomic_write(layout.config_map / name, (cnf_dir / name).read_bytes())
        layout.pods.mkdir(exist_ok=True)
        write_spec(layout, spec)
    except OSError as exc:
        raise ConfigError(f"cannot prepare {layout.root}: {exc}") from exc


def purge(layout: SetLayout) -> None:
    shutil.rmtree(layout.root)
