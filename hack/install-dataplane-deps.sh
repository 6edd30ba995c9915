#!/usr/bin/env bash
# Installs what the data-plane tests, the image builds, the real node and the benchmark need
# (Debian's DPDK 22.11, Docker's engine, runc, CNI plugins, debootstrap, iproute2, util-linux) and
# starts dockerd in the background when no engine answers. Idempotent: a second run installs nothing and leaves a running engine alone.
#
#   hack/install-dataplane-deps.sh             install and start dockerd
#   hack/install-dataplane-deps.sh --no-docker install only, start nothing
#
# dockerd logs to $NFV_DOCKERD_LOG (default /var/log/nfv-dockerd.log). The storage driver is
# overlay2 when the kernel has overlayfs and /var/lib/docker is not itself on overlayfs (nested
# overlay fails), vfs otherwise; NFV_DOCKER_STORAGE_DRIVER forces one.
set -euo pipefail

log() { printf '[install-dataplane-deps] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, dockerd, hugetlbfs mounts need it)"

start_docker=1
[ "${1:-}" = "--no-docker" ] && start_docker=0

packages=(
  dpdk            # dpdk-testpmd and the net_null/net_ring/net_memif PMDs
  dpdk-dev        # headers and pkg-config for VNFs built against DPDK
  docker.io       # Debian's engine: dockerd, containerd, runc
  runc            # the OCI runtime of the real node's own containerd (test/cluster/real-node.ts)
  containernetworking-plugins # bridge, host-local, loopback: the real node's pod network
  debootstrap     # the base image's rootfs (no container registry is reachable)
  iproute2        # ip netns for the memif chain
  util-linux      # unshare, nsenter, mount, flock
  procps          # pgrep
  ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "packages already installed"
fi
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd missing after install"

[ $start_docker = 1 ] || exit 0

# Debian's client, which matches Debian's daemon (a newer client on PATH negotiates down, but
# has no classic builder without buildx).
DOCKER=${DOCKER:-/usr/bin/docker}
if "$DOCKER" info >/dev/null 2>&1; then
  log "docker engine already answers"
  exit 0
fi

storage_driver=${NFV_DOCKER_STORAGE_DRIVER:-}
if [ -z "$storage_driver" ]; then
  mkdir -p /var/lib/docker
  if grep -qw overlay /proc/filesystems && [ "$(findmnt -no FSTYPE -T /var/lib/docker)" != overlay ]; then
    storage_driver=overlay2
  else
    storage_driver=vfs
  fi
fi

dockerd_log=${NFV_DOCKERD_LOG:-/var/log/nfv-dockerd.log}
log "starting dockerd (storage driver $storage_driver, log $dockerd_log)"
# setsid: dockerd must outlive this script and the shell or CI step that ran it.
setsid /usr/sbin/dockerd --storage-driver "$storage_driver" --host unix:///var/run/docker.sock \
  >>"$dockerd_log" 2>&1 </dev/null &

for _ in $(seq 1 120); do
  if "$DOCKER" info >/dev/null 2>&1; then
    log "docker engine ready: $("$DOCKER" info --format '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}')"
    exit 0
  fi
  sleep 0.5
done
tail -n 30 "$dockerd_log" >&2 || true
die "dockerd did not answer within 60 s; see $dockerd_log"
