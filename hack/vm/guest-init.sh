#!/bin/bash
# PID 1 of the nfv-operator test VM (kernel `init=`): makes a pure cgroup v2 host, mounts the
# host's shares, runs one job and powers off. No systemd: a boot takes a second or two and nothing
# else runs in the guest. The harness (test/vm/vm-guest.ts) passes its settings as kernel
# parameters, which the kernel hands to init as these environment variables:
#   nfv_repo    where the read-only `repo` share is mounted (the host's path, so paths match)
#   nfv_node    where the read-only `node` share (the directory of the host's node) is mounted
# The job is /job/run from the writable `job` share; its output goes to /job/stdout and
# /job/stderr, its exit code to /job/exit-code. The harness treats a missing exit-code as a crash.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8

# A failed boot step must still power the guest off, or qemu would wait for its timeout.
power_off() {
  sync
  echo o >/proc/sysrq-trigger
  sleep 10
}
fail() {
  echo "nfv-vm-init: $*" >&2
  power_off
}

# Debian's initramfs hands over /proc, /sys, /dev and /run already mounted.
mounted() { mountpoint -q "$1"; }
mounted /proc || mount -t proc proc /proc || fail "cannot mount /proc"
mounted /sys || mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mounted /dev || mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"
mkdir -p /dev/pts /dev/shm /dev/hugepages
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t hugetlbfs hugetlbfs /dev/hugepages
mounted /run || mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw / || fail "cannot remount / read-write (the root disk must be a qemu snapshot)"
# Pure cgroup v2: the kernel runs with cgroup_no_v1=all, so this is the only hierarchy.
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "cannot mount cgroup2"
ip link set lo up
hostname nfv-vm

modprobe -a 9pnet_virtio 9p || fail "no 9p modules in the guest kernel"
share() { # tag mount-point options
  mkdir -p "$2" && mount -t 9p -o "trans=virtio,version=9p2000.L,msize=524288,$3" "$1" "$2" || fail "cannot mount the $1 share at $2"
}
share job /job rw
[ -n "${nfv_repo:-}" ] && share repo "$nfv_repo" ro,cache=loose
if [ -n "${nfv_node:-}" ]; then
  share node "$nfv_node" ro,cache=loose
  ln -sf "$nfv_node/node" /usr/local/bin/node
fi

cd "${nfv_repo:-/}"
bash /job/run >/job/stdout 2>/job/stderr
echo $? >/job/exit-code.tmp && mv /job/exit-code.tmp /job/exit-code
power_off
