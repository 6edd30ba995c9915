#!/usr/bin/env bash
# Builds the project's container images without any container registry: a minimal Debian bookworm
# rootfs from debootstrap (cached) is imported as the base image that every Dockerfile's FROM line
# names, then each image under images/ is built on top of it with Debian's docker engine.
#
#   hack/build-images.sh                 build every image (a no-op where the layers are cached)
#   hack/build-images.sh dpdk-base l2fwd build these images (and the base rootfs if missing)
#   hack/build-images.sh --print         print name=tag of every image, building nothing
#
# Needs root, debootstrap and a docker engine: hack/install-dataplane-deps.sh provides both.
# The rootfs tarball is cached under $NFV_CACHE/rootfs (default ~/.cache/nfv-operator); delete it
# to debootstrap again. NFV_DEBIAN_MIRROR overrides the mirror, which is otherwise the one this
# machine's apt uses, so the images' apt sources point where the host's do.
set -euo pipefail
# Debian's client matches Debian's engine and has the classic builder (the engine has no buildx).
DOCKER=${DOCKER:-/usr/bin/docker}
export DOCKER_BUILDKIT=0
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
CACHE=${NFV_CACHE:-$HOME/.cache/nfv-operator}
SUITE=bookworm

# One tag per image; test/host/dataplane/images.ts names the same tags.
BASE_IMAGE=nfv-operator/debian:bookworm
declare -A IMAGE_TAGS=(
  [dpdk-base]=nfv-operator/dpdk-base:22.11
  [l2fwd]=nfv-operator/l2fwd:22.11
  [l3fwd]=nfv-operator/l3fwd:22.11
  [operator]=nfv-operator/operator:dev
  [node-agent]=nfv-operator/node-agent:dev
  [pause]=nfv-operator/pause:local
)
# Build order: the VNF images start FROM dpdk-base.
ALL_IMAGES=(dpdk-base l2fwd l3fwd operator node-agent pause)

if [ "${1:-}" = "--print" ]; then
  echo "base=$BASE_IMAGE"
  for name in "${ALL_IMAGES[@]}"; do echo "$name=${IMAGE_TAGS[$name]}"; done
  exit 0
fi

log() { printf '[build-images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap missing: run hack/install-dataplane-deps.sh"
"$DOCKER" info >/dev/null 2>&1 || die "no docker engine answers: run hack/install-dataplane-deps.sh"

requested=("$@")
[ ${#requested[@]} -gt 0 ] || requested=("${ALL_IMAGES[@]}")
for name in "${requested[@]}"; do
  [ -n "${IMAGE_TAGS[$name]:-}" ] || die "unknown image '$name' (known: ${ALL_IMAGES[*]})"
done
# The VNF images start FROM dpdk-base: build it first when it is asked for or missing.
case " ${requested[*]} " in
  *" l2fwd "* | *" l3fwd "*)
    case " ${requested[*]} " in
      *" dpdk-base "*) ;;
      *) "$DOCKER" image inspect "${IMAGE_TAGS[dpdk-base]}" >/dev/null 2>&1 || requested=(dpdk-base "${requested[@]}") ;;
    esac
    ;;
esac

# --- apt sources: the Debian mirror this machine's apt uses -----------------------------------

# Prints "URI suite..." for every Debian (not security) entry of the host's apt sources, in
# both the deb822 (*.sources) and the one-line (sources.list) formats.
host_debian_uris() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/ {u=$2} /^Suites:/ {$1=""; s=$0} /^$/ {if (u) print u, s; u=""; s=""} END {if (u) print u, s}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" && $2 !~ /^\[/ {print $2, $3} $1 == "deb" && $2 ~ /^\[/ {print $3, $4}' "$f"
  done
}
mirror=${NFV_DEBIAN_MIRROR:-$(host_debian_uris | awk -v s="$SUITE" '$0 ~ " "s"( |$)" && $1 !~ /security/ {print $1; exit}')}
mirror=${mirror:-http://deb.debian.org/debian}
security_mirror=$(host_debian_uris | awk -v s="$SUITE-security" '$0 ~ s {print $1; exit}')
security_mirror=${security_mirror:-http://deb.debian.org/debian-security}
log "Debian mirror $mirror, security $security_mirror"

# --- base rootfs ------------------------------------------------------------------------------

rootfs_dir=$CACHE/rootfs
rootfs_tar=$rootfs_dir/debian-$SUITE-minbase.tar
mkdir -p "$rootfs_dir"
exec 9>"$rootfs_dir/.lock"
flock 9

if [ ! -s "$rootfs_tar" ]; then
  work=$(mktemp -d "$rootfs_dir/debootstrap.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  log "debootstrap --variant=minbase $SUITE from $mirror (a few minutes, cached afterwards)"
  debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  cat >"$work/rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  rm -f "$work/rootfs/etc/apt/sources.list"
  # Images stay small: no recommends, no docs, no apt lists left behind.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$work/rootfs/etc/apt/apt.conf.d/90nfv-no-recommends"
  cat >"$work/rootfs/etc/dpkg/dpkg.cfg.d/90nfv-no-docs" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
  chroot "$work/rootfs" apt-get clean
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/log/"*.log
  tar --numeric-owner -C "$work/rootfs" -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$work"
  trap - EXIT
fi

# The imported image carries the tarball's digest, so a new rootfs replaces it and an unchanged
# one is not imported twice.
rootfs_sum=$(sha256sum "$rootfs_tar" | cut -c1-16)
if [ "$("$DOCKER" image inspect -f '{{index .Config.Labels "dev.nfv.rootfs"}}' "$BASE_IMAGE" 2>/dev/null)" != "$rootfs_sum" ]; then
  log "docker import $rootfs_tar as $BASE_IMAGE"
  "$DOCKER" import \
    --change "LABEL dev.nfv.rootfs=$rootfs_sum" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$rootfs_tar" "$BASE_IMAGE" >/dev/null
fi
flock -u 9

# --- images -----------------------------------------------------------------------------------

# Stages the Node.js app context for the operator and agent images: the host's node binary (this
# machine's Node 20 comes from a repository that the image's apt cannot reach, and Debian's
# nodejs is 18), the compiled dist/ and production node_modules.
stage_node_app() {
  local context=$1
  rm -rf "$context" && mkdir -p "$context/app"
  cp "$(command -v node)" "$context/node"
  (cd "$root" && npm run --silent build) || die "npm run build failed: the operator and agent images need dist/"
  cp -r "$root/dist" "$root/package.json" "$root/package-lock.json" "$context/app/"
  cp -r "$root/node_modules" "$context/app/node_modules"
  (cd "$context/app" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
  cp "$root/images/$2/Dockerfile" "$context/Dockerfile"
}

# No registry is reachable: every FROM is an image built here, so builds never pull. The build
# containers use the host network, which reaches the same Debian mirror as the host.
build() { # name context
  local name=$1 context=$2 started previous
  started=$(date +%s)
  previous=$("$DOCKER" image inspect -f '{{.Id}}' "${IMAGE_TAGS[$name]}" 2>/dev/null || true)
  log "docker build ${IMAGE_TAGS[$name]} from $context"
  "$DOCKER" build --network host --pull=false --force-rm -t "${IMAGE_TAGS[$name]}" \
    --label "dev.nfv.image=$name" -f "$context/Dockerfile" "$context" >"$CACHE/build-$name.log" 2>&1 ||
    { tail -n 40 "$CACHE/build-$name.log" >&2; die "docker build of $name failed; full log $CACHE/build-$name.log"; }
  # The image the tag named before, if this build replaced it (kept while a container uses it).
  if [ -n "$previous" ] && [ "$previous" != "$("$DOCKER" image inspect -f '{{.Id}}' "${IMAGE_TAGS[$name]}")" ]; then
    "$DOCKER" rmi "$previous" >/dev/null 2>&1 || true
  fi
  log "built ${IMAGE_TAGS[$name]} in $(($(date +%s) - started)) s"
}

# dpdk-base rebuilds the PMDs that patches/ fixes and l3fwd applies its example's patches: their
# context is their directory plus patches/.
stage_with_patches() { # context name
  rm -rf "$1" && mkdir -p "$1"
  cp -r "$root/images/$2/." "$1/"
  cp -r "$root/patches" "$1/patches"
}

# The sandbox ("pause") image of the real node's containerd (test/cluster/real-node.ts): the
# registry's registry.k8s.io/pause is unreachable, and the base image's shell can hold a pod's
# namespaces as well. PID 1 ignores SIGTERM unless it traps it, so the trap makes stops quick.
stage_pause() { # context
  rm -rf "$1" && mkdir -p "$1"
  printf 'FROM %s\nCMD ["/bin/sh", "-c", "trap \x27exit 0\x27 TERM INT; sleep infinity & wait"]\n' "$BASE_IMAGE" >"$1/Dockerfile"
}

for name in "${requested[@]}"; do
  case $name in
    pause) stage_pause "$CACHE/image-context/pause" && build pause "$CACHE/image-context/pause" ;;
    dpdk-base | l3fwd) stage_with_patches "$CACHE/image-context/$name" "$name" && build "$name" "$CACHE/image-context/$name" ;;
    operator | node-agent) stage_node_app "$CACHE/image-context/$name" "$name" && build "$name" "$CACHE/image-context/$name" ;;
    *) build "$name" "$root/images/$name" ;;
  esac
done
