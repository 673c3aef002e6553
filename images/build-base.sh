#!/usr/bin/env bash
# Build a local base image from Debian bookworm's packages with debootstrap + `docker import`,
# for machines that cannot pull images. KIND `server` (the default): MariaDB server, backup tool
# and python3, the base of the pod's images. KIND `python`: python3 alone, the base of the
# takeover image, which needs no database (a third of the size).
# Skips the build when an image with the same content stamp exists.
# Usage: build-base.sh [IMAGE [KIND]]
set -euo pipefail
cd "$(dirname "$0")"

image=${1:-mysqlsts-base:bookworm}
kind=${2:-server}
suite=bookworm
case "$kind" in
  # python3-cffi-backend: named, as debootstrap does not resolve the virtual package
  # python3-cryptography depends on. ca-certificates: the s3:// store client (obstore) cannot
  # even build its HTTP client without the system's CA bundle, http endpoints included.
  server) packages=(mariadb-server mariadb-backup python3 python3-cryptography
            python3-cffi-backend python3-zstandard ca-certificates) ;;
  python) packages=(python3) ;;
  *) echo "build-base: KIND must be server or python, not $kind" >&2; exit 2 ;;
esac

# The stamp covers everything that decides the image's content, so editing this script or the
# package list rebuilds it and nothing else does.
stamp=$(printf '%s\n' "$suite" "$kind" "${packages[@]}" | cat - "$(basename "$0")" | sha256sum | cut -c1-16)
current=$(docker image inspect -f '{{index .Config.Labels "org.mysqlsts.base-stamp"}}' \
  "$image" 2>/dev/null || true)
if [ "$current" = "$stamp" ]; then
  echo "build-base: $image is up to date (stamp $stamp)" >&2
  exit 0
fi

# The mirror this machine already uses: deb822 sources first, then the one-line format.
mirror=${MYSQLSTS_DEBIAN_MIRROR:-}
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk -v suite="$suite" '
    /^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri = ""; hit = 0; next }
    $1 == "URIs:" { uri = $2 }
    $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
    END { if (uri != "" && hit) print uri }' /etc/apt/sources.list.d/debian.sources | head -n1)
fi
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
  mirror=$(awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }' \
    /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
  echo "build-base: no apt source for $suite found; set MYSQLSTS_DEBIAN_MIRROR" >&2
  exit 2
fi

rootfs=$(mktemp -d /var/tmp/mysqlsts-base.XXXXXX)
cleanup() {
  # debootstrap mounts these while it runs; never delete through a live mount.
  for mnt in dev/pts dev sys proc; do
    if mountpoint -q "$rootfs/$mnt"; then umount -l "$rootfs/$mnt" || true; fi
  done
  rm -rf --one-file-system "$rootfs"
}
trap cleanup EXIT

echo "build-base: debootstrap $suite from $mirror with ${packages[*]}" >&2
include=$(IFS=,; echo "${packages[*]}")
debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" \
  >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

if [ "$kind" = server ]; then
  # Match the official images: mysql is uid/gid 999, so files a clone writes belong to the
  # server, and the server listens on every address (Debian's default binds 127.0.0.1 only).
  chroot "$rootfs" sh -eu -c '
    groupmod -g 999 mysql
    usermod -u 999 -g 999 mysql
    mkdir -p /run/mysqld /var/lib/mysql
    chown -R mysql:mysql /run/mysqld /var/lib/mysql
    sed -i "s/^bind-address/#bind-address/" /etc/mysql/mariadb.conf.d/50-server.cnf
  '
  # An empty data dir: Docker copies an image directory into a new named volume mounted over
  # it, and a pre-filled one would look like a server that was already initialised.
  find "$rootfs/var/lib/mysql" -mindepth 1 -delete
fi
# Keep the rootfs small: nothing here is needed to run a server or the tools.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
  "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs/var/log" -type f -delete

tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change "LABEL org.mysqlsts.base-stamp=$stamp" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  - "$image" >/dev/null
echo "build-base: built $image (stamp $stamp)" >&2
