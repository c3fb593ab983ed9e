#!/usr/bin/env bash
# Builds Ablate's CPU images with podman where no image registry is reachable, and starts them.
#   bash scripts/images.sh base    a Debian 12 base image made by debootstrap from a Debian
#                                  mirror: localhost/ablate-base:bookworm
#   bash scripts/images.sh build [IMAGE...]
#                                  the coordinator and CPU worker images on that base:
#                                  localhost/ablate-coordinator:VERSION and
#                                  localhost/ablate-worker-cpu:VERSION
#   bash scripts/images.sh smoke   tests/deploy/images_test.py: both images started, a sweep
#                                  through them to success
#   bash scripts/images.sh         all three (an existing base is kept; delete it to remake it)
# Needs root (debootstrap; rootful podman), podman, debootstrap and runc (Debian packages).
# DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR (required for base) are the mirrors' URLs; worker-cpu
# needs TORCH_WHEELS (a folder holding torch-2.13.0+cpu's wheel) or PIP_EXTRA_INDEX_URL
# (PyTorch's CPU wheel index), checked before anything is built. The builds compile Ablate
# inside the images: tens of minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null ||
    { echo "images.sh: $1 not found (apt-get install podman debootstrap runc)" >&2; exit 1; }
}
need podman

BASE=localhost/ablate-base:bookworm
VERSION=$(sed -n 's/^project(ablate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
MIRROR=${DEBIAN_MIRROR:-}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-}

# Where the OCI runtime cannot raise a limit (a container without CAP_SYS_RESOURCE), podman's
# default rlimits for RUN steps fail with "setrlimit RLIMIT_NOFILE: Operation not permitted";
# these fit under any usual hard limit. crun refuses hybrid cgroup v1/v2 hosts ("cgroups in
# hybrid mode not supported"); runc runs on both, so it is used where installed. The docker
# format keeps what the OCI format drops (SHELL: the worker's build steps run under pipefail).
BUILD_FLAGS=(--format docker --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
if command -v runc >/dev/null; then BUILD_FLAGS+=(--runtime runc); fi

# A subshell, for its exit trap.
make_base() (
  if podman image exists "$BASE"; then
    echo "images: $BASE exists; keeping it"
    exit 0
  fi
  need debootstrap
  if [ -z "$MIRROR" ] || [ -z "$SECURITY_MIRROR" ]; then
    echo "images.sh: set DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR to the URLs of a Debian mirror" \
      "and of its security archive (the base image is made from them)" >&2
    exit 1
  fi
  root=$(mktemp -d "${TMPDIR:-/var/tmp}/ablate-base.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "images: debootstrap bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$root/rootfs" "$MIRROR" >"$root/debootstrap.log" ||
    { tail -20 "$root/debootstrap.log" >&2; exit 1; }
  # The suites of Debian's own bookworm images, so that apt-get in the Dockerfiles gets fixes.
  cat >"$root/rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
  rm -rf "$root"/rootfs/var/lib/apt/lists/* "$root"/rootfs/var/cache/apt/*
  # The site-local CAs this machine trusts (a TLS-inspecting proxy's, say) go into the base, so
  # that the images' ca-certificates trust them too, and pip and npm (which carry CA bundles of
  # their own) are pointed at the system's bundle.
  changes=(--change 'CMD ["bash"]')
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$root/rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/rootfs/usr/local/share/ca-certificates/"
    changes+=(--change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
              --change "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt")
  fi
  tar --numeric-owner -C "$root/rootfs" -c . | podman import "${changes[@]}" - "$BASE" >/dev/null
  echo "images: $BASE made"
)

# The CPU worker's torch: TORCH_WHEELS, a folder holding torch's CPU wheel, mounted into the
# build's RUN steps (so it is no part of any layer), or else PIP_EXTRA_INDEX_URL, PyTorch's CPU
# wheel index. Checked before any image is built, so a mistake costs seconds, not a build.
TORCH_WHEEL_GLOB="torch-2.13.0+cpu-*.whl"
torch_source_flags() {
  if [ -n "${TORCH_WHEELS:-}" ]; then
    if ! compgen -G "$TORCH_WHEELS/$TORCH_WHEEL_GLOB" >/dev/null; then
      echo "images.sh: TORCH_WHEELS=$TORCH_WHEELS holds no $TORCH_WHEEL_GLOB" >&2
      exit 1
    fi
    torch_flags=(-v "$(realpath "$TORCH_WHEELS"):/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels)
  elif [ -n "${PIP_EXTRA_INDEX_URL:-}" ]; then
    torch_flags=(--build-arg PIP_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX_URL")
  else
    echo "images.sh: the CPU worker needs torch's CPU build: set TORCH_WHEELS to a folder" \
      "holding $TORCH_WHEEL_GLOB, or PIP_EXTRA_INDEX_URL to PyTorch's CPU wheel index" >&2
    exit 1
  fi
}

# $1: coordinator or worker-cpu.
build_image() {
  local flags=("${BUILD_FLAGS[@]}")
  if [ "$1" = worker-cpu ]; then flags+=("${torch_flags[@]}"); fi
  echo "images: building localhost/ablate-$1:$VERSION"
  podman build "${flags[@]}" --pull=never --build-arg DEBIAN_IMAGE="$BASE" \
    --build-arg VERSION="$VERSION" -f "deploy/docker/Dockerfile.$1" \
    -t "localhost/ablate-$1:$VERSION" .
}

smoke() { ABLATE_IMAGE_TAG=$VERSION python3 tests/deploy/images_test.py; }

step=${1:-all}
images=("${@:2}")
if [ "$step" = build ] && [ ${#images[@]} = 0 ]; then images=(coordinator worker-cpu); fi
if [ "$step" = all ]; then images=(coordinator worker-cpu); fi
for image in "${images[@]}"; do
  case "$image" in
    coordinator) ;;
    worker-cpu) torch_source_flags ;;
    *) echo "images.sh: unknown image '$image' (coordinator, worker-cpu)" >&2; exit 2 ;;
  esac
done
case "$step" in
  base) make_base ;;
  build) for image in "${images[@]}"; do build_image "$image"; done ;;
  smoke) smoke ;;
  all)
    make_base
    build_image coordinator
    build_image worker-cpu
    smoke
    ;;
  *)
    echo "images.sh: unknown step '$step' (base, build, smoke)" >&2
    exit 2
    ;;
esac
