#!/usr/bin/env bash
# Builds the test VM once and caches it by version under $NFV_CACHE/vm/<version>/ (default
# ~/.cache/nfv-operator): a Debian bookworm guest with Debian's kernel and initrd, and an ext4
# root filesystem image, made from Debian packages only (no image download is possible here).
#
#   hack/vm/build-vm-image.sh              build if missing, then print the cache directory
#   hack/vm/build-vm-image.sh --print-dir  print the cache directory, building nothing
#
# The directory holds vmlinuz, initrd.img and rootfs.ext4. The guest boots a pure cgroup v2 host
# with hack/vm/guest-init.sh as init (no systemd); test/vm/vm-guest.ts boots it under KVM with
# the root disk as a throw-away snapshot, so one image serves any number of runs. The version is a
# digest of this script and of the guest init: changing either builds a new image.
#
# Needs root. The rootfs starts from the debootstrap tarball hack/build-images.sh caches (it is
# made by that script when missing), so there is one debootstrap for images and VM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${NFV_CACHE:-$HOME/.cache/nfv-operator}
ROOTFS_TAR=$CACHE/rootfs/debian-bookworm-minbase.tar

# What the node agent and its host tests run in the guest: the kernel (the generic one: the
# cloud kernel has no 9p for the shares), mount/unshare/nsenter/taskset (util-linux), ip
# (iproute2), udevadm, a C compiler for the hugepage mmap probe, and dpdk-testpmd (dpdk-dev) for
# the bench. Node comes from the host.
GUEST_PACKAGES=(linux-image-amd64 kmod udev util-linux iproute2 procps gcc libc6-dev dpdk-dev)
# Host packages: qemu with KVM, and mke2fs -d to make the root image without a loop mount.
HOST_PACKAGES=(qemu-system-x86 e2fsprogs)

log() { printf '[build-vm-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The ELF kernel inside Debian's bzImage (an xz stream). qemu boots it through its PVH entry
# point, straight into 32-bit protected mode: no BIOS, no real-mode setup code. Under this
# machine's KVM the bzImage path never gets past the real-mode setup (see test/vm/vm-guest.ts).
extract_vmlinux() { # bzImage output
  local offset
  offset=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$1" | head -n1 | cut -d: -f1)
  [ -n "$offset" ] || die "no xz stream in $1: cannot extract the ELF kernel"
  tail -c +$((offset + 1)) "$1" | xz -dc >"$2" 2>/dev/null || true
  [ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" = '177ELF' ] || die "the xz stream in $1 is not an ELF kernel"
}

version=bookworm-$(cat "$here/build-vm-image.sh" "$here/guest-init.sh" | sha256sum | cut -c1-12)
dir=$CACHE/vm/$version
if [ "${1:-}" = "--print-dir" ]; then echo "$dir"; exit 0; fi
if [ -s "$dir/rootfs.ext4" ]; then echo "$dir"; exit 0; fi

[ "$(id -u)" = 0 ] || die "run as root (chroot and apt-get need it)"
missing=()
for p in "${HOST_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -s "$ROOTFS_TAR" ] || "$root/hack/build-images.sh" dpdk-base || die "no base rootfs at $ROOTFS_TAR and hack/build-images.sh could not make it"

mkdir -p "$CACHE/vm"
exec 9>"$CACHE/vm/.lock"
flock 9
if [ -s "$dir/rootfs.ext4" ]; then echo "$dir"; exit 0; fi

work=$(mktemp -d "$CACHE/vm/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
log "building $dir from $ROOTFS_TAR (a few minutes, cached afterwards)"
mkdir "$work/rootfs"
tar --numeric-owner -xf "$ROOTFS_TAR" -C "$work/rootfs"
cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
install -m 0755 "$here/guest-init.sh" "$work/rootfs/usr/local/sbin/nfv-vm-init"

# apt-get in the chroot, in a private mount namespace: its /proc, /sys and /dev mounts vanish
# with the namespace, even if the build is killed.
unshare --mount --propagation private -- bash -euo pipefail -c '
  r=$1; shift
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  mount --rbind /dev "$r/dev"
  chroot "$r" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$r" apt-get install -y -qq --no-install-recommends "$@"
  chroot "$r" apt-get clean
' build "$work/rootfs" "${GUEST_PACKAGES[@]}" >"$work/apt.log" 2>&1 ||
  { tail -n 30 "$work/apt.log" >&2; die "apt-get install in the guest rootfs failed"; }
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/etc/resolv.conf"

mkdir "$work/out"
extract_vmlinux "$work"/rootfs/boot/vmlinuz-* "$work/out/vmlinux"
cp "$work"/rootfs/boot/initrd.img-* "$work/out/initrd.img"
# Room for what the tests write outside /tmp (a tmpfs) on the snapshot; the file stays sparse.
size_mb=$(($(du -sm "$work/rootfs" | cut -f1) * 13 / 10 + 512))
mkfs.ext4 -q -F -L nfv-vm-root -d "$work/rootfs" "$work/out/rootfs.ext4" "${size_mb}M" >&2 ||
  die "mkfs.ext4 -d failed"
mv "$work/out" "$dir"
log "built $dir in $(($(date +%s) - started)) s"
echo "$dir"
