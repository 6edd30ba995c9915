#!/bin/sh
# Rebuilds the DPDK PMDs that patches/ changes, against the installed Debian DPDK, and installs
# them over Debian's files. Runs in the builder stage of images/dpdk-base/Dockerfile.
#
#   build-patched-pmd.sh SOURCE_DIR PATCH_DIR OUT_DIR
#
# Only the PMD's own sources are compiled; the public headers and rte_build_config.h are the
# installed ones, so the PMD matches the ABI of the libraries it is loaded with. The driver
# headers that Debian does not install (ethdev_driver.h and friends) come from the same source
# version. The example apps' patches (examples/) are applied here too but built by their VNF
# images; a patch to anything but net/memif or examples/ stops the build here rather than being
# left out of the image.
set -eu
src=$1 patches=$2 out=$3

while read -r patch; do
  [ -n "$patch" ] || continue
  echo "applying $patch"
  patch -d "$src" -p1 --no-backup-if-mismatch <"$patches/$patch"
  touched=$(sed -n 's#^+++ b/##p' "$patches/$patch" | grep -Ev '^(drivers/net/memif|examples)/' || true)
  if [ -n "$touched" ]; then
    echo "build-patched-pmd.sh: $patch changes $touched; only drivers/net/memif is rebuilt here" >&2
    exit 1
  fi
done <"$patches/series"

internal=$(mktemp -d)
for header in lib/ethdev/ethdev_driver.h lib/ethdev/ethdev_vdev.h drivers/bus/vdev/bus_vdev_driver.h \
  lib/eal/include/bus_driver.h lib/eal/include/dev_driver.h; do
  cp "$src/$header" "$internal/"
done
printf 'DPDK_23 {\n\tlocal: *;\n};\n' >"$internal/version.map"

mkdir -p "$out"
# shellcheck disable=SC2046 # pkg-config prints a list of flags.
gcc -O3 -fPIC -shared -D_GNU_SOURCE -Werror -Wall -Wno-address-of-packed-member \
  $(pkg-config --cflags libdpdk) -I"$internal" \
  -DALLOW_INTERNAL_API -DALLOW_EXPERIMENTAL_API -DRTE_LOG_DEFAULT_LOGTYPE=pmd.net.memif \
  -Wl,-soname,librte_net_memif.so.23 -Wl,--version-script="$internal/version.map" -Wl,--as-needed \
  -o "$out/librte_net_memif.so.23.0" \
  "$src/drivers/net/memif/memif_socket.c" "$src/drivers/net/memif/rte_eth_memif.c" \
  -lrte_ethdev -lrte_eal -lrte_kvargs -lrte_mbuf -lrte_mempool -lrte_bus_vdev -lrte_hash -lrte_net
echo "built $out/librte_net_memif.so.23.0"
