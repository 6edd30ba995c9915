#!/usr/bin/env bash
# Makes a fresh clone ready to run: Debian packages, node_modules, and the local-cluster binaries
# (built once from the Go module proxy, then cached by version). `npm test` and `npm run demo`
# run this first (pretest/predemo), so the README's two commands work on a fresh machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."

# Debian packages the suites need: openssl (cluster PKI), util-linux (mount, unshare, nsenter)
# and iproute2 (network namespaces) for the node agent tests.
packages=(openssl util-linux iproute2 procps)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
fi
[ -x hack/install-dataplane-deps.sh ] && hack/install-dataplane-deps.sh

# node_modules, when absent or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

hack/build-tools.sh
