#!/bin/sh
# Make a base image fit to run mysqlsts: python3 >= 3.11, the `mysql` user as uid/gid 999, the
# backup tool of FLAVOR, and the mount points the pod's volumes land on. Runs as root during
# `docker build`; on the local Debian base it needs no network, elsewhere it installs python3.
# FLAVOR `none` (the takeover image) skips what only the database pod needs: the backup tool,
# Debian's cryptography and zstandard (the takeover image unpacks its binary wheels) and the
# mount points.
# Usage: prepare-runtime.sh FLAVOR
set -eu
flavor=$1

# Links the first python >= 3.11 as /usr/local/bin/mysqlsts-python, the launcher's interpreter.
python_ok() {
  for py in python3 python3.13 python3.12 python3.11; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      mkdir -p /usr/local/bin
      ln -sf "$(command -v "$py")" /usr/local/bin/mysqlsts-python
      return 0
    fi
  done
  return 1
}

if ! python_ok; then
  echo "prepare-runtime: installing python3 (>= 3.11)" >&2
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3.11
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*
  elif command -v microdnf >/dev/null 2>&1; then
    microdnf install -y python3.11 && microdnf clean all
  elif command -v dnf >/dev/null 2>&1; then
    dnf install -y python3.11 && dnf clean all
  fi
  python_ok || { echo "prepare-runtime: no python3 >= 3.11 in this base image" >&2; exit 1; }
fi

# ensure_module MODULE PACKAGE VERSION: the distribution's build of a binary Python package
# (Debian's python3-PACKAGE, or python3.11-PACKAGE on RPM bases) unless MODULE imports already.
ensure_module() {
  local module=$1 package=$2 version=$3
  mysqlsts-python -c "import $module" 2>/dev/null && return 0
  echo "prepare-runtime: installing python3-$package" >&2
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "python3-$package"
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*
  elif command -v microdnf >/dev/null 2>&1; then
    microdnf install -y "python3.11-$package" && microdnf clean all
  elif command -v dnf >/dev/null 2>&1; then
    dnf install -y "python3.11-$package" && dnf clean all
  fi
  mysqlsts-python -c "import $module" 2>/dev/null || {
    echo "prepare-runtime: no $package ($version) for $(mysqlsts-python --version)" >&2
    exit 1
  }
}
# The clone stream's cipher (AES-GCM, HKDF); install_wheels.py unpacks only pure-Python wheels
# for these images. The takeover image (flavor none) brings its own binary wheels.
if [ "$flavor" != none ]; then
  ensure_module cryptography.hazmat.primitives.ciphers.aead cryptography ">= 38"
fi
# The clone stream's optional compression (the takeover image unpacks its binary wheel).
if [ "$flavor" != none ]; then
  ensure_module zstandard zstandard ">= 0.20"
fi

# The CA bundle the s3:// store client (obstore, unpacked by install_wheels.py) loads: without
# one it cannot build its HTTP client at all, so every s3:// store fails (the container tests
# prove it works). Debian's path, then the RPM bases'.
has_ca_bundle() {
  [ -s /etc/ssl/certs/ca-certificates.crt ] || [ -s /etc/pki/tls/certs/ca-bundle.crt ]
}
if [ "$flavor" != none ] && ! has_ca_bundle; then
  echo "prepare-runtime: installing ca-certificates" >&2
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*
  elif command -v microdnf >/dev/null 2>&1; then
    microdnf install -y ca-certificates && microdnf clean all
  elif command -v dnf >/dev/null 2>&1; then
    dnf install -y ca-certificates && dnf clean all
  fi
  has_ca_bundle || { echo "prepare-runtime: no CA certificate bundle in this base image" >&2; exit 1; }
fi

# uid/gid 999 as in the official mariadb and mysql images, so files a clone writes belong to
# the server that later opens them.
if ! getent group mysql >/dev/null; then groupadd -r -g 999 mysql; fi
if ! id mysql >/dev/null 2>&1; then useradd -r -u 999 -g mysql -d /var/lib/mysql mysql; fi
if [ "$(getent group mysql | cut -d: -f3)" != 999 ]; then groupmod -g 999 mysql || true; fi
if [ "$(id -u mysql)" != 999 ]; then usermod -u 999 -g 999 mysql || true; fi
if [ "$(id -u mysql)" != 999 ] || [ "$(getent group mysql | cut -d: -f3)" != 999 ]; then
  echo "prepare-runtime: cannot make user mysql uid/gid 999 (is 999 taken?)" >&2
  exit 1
fi

case "$flavor" in
  mariadb) tools="mariabackup mbstream" ;;
  mysql) tools="xtrabackup xbstream" ;;
  none) exit 0 ;;
  *) echo "prepare-runtime: FLAVOR must be mariadb, mysql or none, not $flavor" >&2; exit 1 ;;
esac
for tool in $tools; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "prepare-runtime: $tool (the $flavor backup tool) is missing from the base image" >&2
    exit 1
  }
done

# Empty named volumes take the owner of the directory they are mounted over.
mkdir -p /var/lib/mysql /run/mysqld /mnt/conf.d /mnt/config-map /etc/mysqlsts/secrets
chown mysql:mysql /var/lib/mysql /run/mysqld /mnt/conf.d
