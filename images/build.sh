#!/usr/bin/env bash
# `make images`: the local base image, the wheels, and the images the manifests name --
# mysqlsts-server (MariaDB only), mysqlsts-init, mysqlsts-sidecar, and mysqlsts-takeover (mariadb
# flavor only; k8s/components/takeover) -- under exactly the names and tags
# k8s/base/kustomization.yaml and the takeover Deployment use (plus the test-only DNS image),
# printing each image's size and build time.
# Env: MYSQLSTS_BASE_IMAGE (default: build mysqlsts-base:bookworm here; set e.g. mariadb:10.11
# or percona/percona-xtrabackup:8.4 where images can be pulled), MYSQLSTS_TAKEOVER_BASE_IMAGE
# (python3 only; default: build mysqlsts-python-base:bookworm here, or python:3.11-slim-bookworm
# when MYSQLSTS_BASE_IMAGE names a pulled base), MYSQLSTS_FLAVOR (mariadb|mysql),
# MYSQLSTS_IMAGE_REGISTRY (ghcr.io/mysqlsts), MYSQLSTS_IMAGE_TAG (the package version from
# pyproject.toml, with -mysql8 for the mysql flavor), MYSQLSTS_PLATFORM (e.g. linux/arm64).
set -euo pipefail
cd "$(dirname "$0")/.."

python=.venv/bin/python; [ -x "$python" ] || python=python3
base=${MYSQLSTS_BASE_IMAGE:-mysqlsts-base:bookworm}
# The takeover controller needs python3 and nothing of the database: its own, smaller base.
if [ "$base" = mysqlsts-base:bookworm ]; then
  takeover_base=${MYSQLSTS_TAKEOVER_BASE_IMAGE:-mysqlsts-python-base:bookworm}
else
  takeover_base=${MYSQLSTS_TAKEOVER_BASE_IMAGE:-python:3.11-slim-bookworm}
fi
flavor=${MYSQLSTS_FLAVOR:-mariadb}
# The one version source: pyproject.toml. The manifests pin the same tag (tests/manifests
# checks it) and the release workflow refuses a git tag that differs from it.
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
case "$flavor" in
  mariadb) suffix="" ;;
  mysql) suffix="-mysql8" ;;
  *) echo "images: MYSQLSTS_FLAVOR must be mariadb or mysql, not $flavor" >&2; exit 2 ;;
esac
registry=${MYSQLSTS_IMAGE_REGISTRY:-ghcr.io/mysqlsts}
tag=${MYSQLSTS_IMAGE_TAG:-$version$suffix}
platform=()
[ -z "${MYSQLSTS_PLATFORM:-}" ] || platform=(--platform "$MYSQLSTS_PLATFORM")
wheels=build/images/wheels
mkdir -p build/images

report() {  # image seconds
  local size
  size=$(docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1000000 }')
  printf 'images: %-44s %8s  built in %ss\n' "$1" "$size" "$2"
}

log=build/images/build.log
timed() {  # image command...: quiet on success, the log's tail on failure
  local image=$1 start=$SECONDS
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    echo "images: building $image failed (log $log)" >&2
    exit 1
  fi
  report "$image" $((SECONDS - start))
}

if [ "$base" = mysqlsts-base:bookworm ]; then
  timed "$base" images/build-base.sh "$base"
fi

# Wheels for the package and its dependencies, built from this tree on the host: the image
# build then needs neither pip nor a network.
start=$SECONDS
rm -rf "$wheels"
mkdir -p "$wheels"
if ! "$python" -m pip wheel -q --disable-pip-version-check -w "$wheels" . >"$log" 2>&1; then
  tail -n 25 "$log" >&2
  echo "images: building wheels failed (log $log)" >&2
  exit 1
fi
echo "images: wheels $(cd "$wheels" && ls | tr '\n' ' ')in $((SECONDS - start))s"

# The server only where the base carries it (MariaDB's); MySQL 8.4 runs the official image.
kinds=(init sidecar)
[ "$flavor" = mysql ] || kinds=(server init sidecar)
for kind in "${kinds[@]}"; do
  image="$registry/mysqlsts-$kind:$tag"
  timed "$image" docker build "${platform[@]}" -f "Dockerfile.$kind" \
    --build-arg BASE_IMAGE="$base" --build-arg FLAVOR="$flavor" -t "$image" .
done
# The takeover controller: flavor-independent, so built once, with the mariadb flavor's plain
# version tag the takeover Deployment names. Its own wheel set, `.[kube]`, binary wheels
# included (the `kubernetes` client's pydantic-core, aiohttp, ...), built for this host's
# Python and machine: install_wheels.py refuses any whose tags do not fit the image.
if [ "$flavor" = mariadb ]; then
  start=$SECONDS
  rm -rf "$wheels-takeover"
  mkdir -p "$wheels-takeover"
  if ! "$python" -m pip wheel -q --disable-pip-version-check -w "$wheels-takeover" '.[kube]' \
      >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    echo "images: building the takeover wheels failed (log $log)" >&2
    exit 1
  fi
  echo "images: takeover wheels ($(ls "$wheels-takeover" | wc -l)) in $((SECONDS - start))s"
  if [ "$takeover_base" = mysqlsts-python-base:bookworm ]; then
    timed "$takeover_base" images/build-base.sh "$takeover_base" python
  fi
  image="$registry/mysqlsts-takeover:$tag"
  timed "$image" docker build "${platform[@]}" -f Dockerfile.takeover \
    --build-arg BASE_IMAGE="$takeover_base" -t "$image" .
fi
# The images these builds replaced, now untagged: repeated runs must not fill the disk.
docker image prune -f --filter dangling=true --filter label=io.mysqlsts.image >/dev/null

# The container tests' DNS server (dnsmasq from Debian), on the local base only. Containers may
# not reach a package mirror, so the host downloads dnsmasq-base and its dependencies and the
# build installs those files.
if [ "$base" = mysqlsts-base:bookworm ]; then
  dns_context=build/images/dns
  rm -rf "$dns_context" && mkdir -p "$dns_context/debs"
  cp images/dns/Dockerfile "$dns_context/"
  compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null || apt-get update -qq
  # Exactly what apt would add to the base (resolved inside it against the host's package
  # lists): reinstalling the base's own packages, or alternatives to them, would break it.
  mapfile -t dns_packages < <(docker run --rm --user root --entrypoint apt-get \
    -v /var/lib/apt/lists:/var/lib/apt/lists:ro "$base" \
    install -s -qq --no-install-recommends dnsmasq-base | awk '/^Inst /{print $2}')
  (cd "$dns_context/debs" && apt-get download -qq "${dns_packages[@]}") >"$log" 2>&1 \
    || { tail -n 25 "$log" >&2; echo "images: downloading dnsmasq-base failed" >&2; exit 1; }
  timed "mysqlsts-dns:test" docker build --build-arg BASE_IMAGE="$base" \
    -t "mysqlsts-dns:test" "$dns_context"
fi
