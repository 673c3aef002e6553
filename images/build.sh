#!/usr/bin/env bash
# `make images`: the local base image, the wheels, mysqlsts-init and mysqlsts-sidecar (and the
# test-only DNS image), printing each image's size and build time.
# Env: MYSQLSTS_BASE_IMAGE (default: build mysqlsts-base:bookworm here; set e.g. mariadb:10.11
# or percona/percona-xtrabackup:8.4 where images can be pulled), MYSQLSTS_FLAVOR (mariadb|mysql),
# MYSQLSTS_IMAGE_TAG (dev).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${MYSQLSTS_BASE_IMAGE:-mysqlsts-base:bookworm}
flavor=${MYSQLSTS_FLAVOR:-mariadb}
tag=${MYSQLSTS_IMAGE_TAG:-dev}
wheels=build/images/wheels
mkdir -p build/images
python=.venv/bin/python; [ -x "$python" ] || python=python3

report() {  # image seconds
  local size
  size=$(docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1000000 }')
  printf 'images: %-28s %8s  built in %ss\n' "$1" "$size" "$2"
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

for kind in init sidecar; do
  timed "mysqlsts-$kind:$tag" docker build -f "Dockerfile.$kind" \
    --build-arg BASE_IMAGE="$base" --build-arg FLAVOR="$flavor" -t "mysqlsts-$kind:$tag" .
done
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
  timed "mysqlsts-dns:$tag" docker build --build-arg BASE_IMAGE="$base" \
    -t "mysqlsts-dns:$tag" "$dns_context"
fi
