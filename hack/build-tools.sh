#!/usr/bin/env bash
# Builds, once per version, the binaries of the local cluster, of its real node (kubelet, containerd,
# crictl) and of the chart checks from the Go module proxy (no container registry is reachable),
# into $NFV_CACHE/bin/<tool>-<version>/.
# Safe to run concurrently (flock) and a no-op when everything is cached.
#
#   hack/build-tools.sh            build what is missing
#   hack/build-tools.sh --print    print the directory of each tool (name=dir), building nothing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
CACHE=${NFV_CACHE:-$HOME/.cache/nfv-operator}
BIN=$CACHE/bin
SRC=$CACHE/src
export GOFLAGS=-mod=mod CGO_ENABLED=0

k8s_dir=$BIN/kubernetes-$K8S_VERSION
etcd_dir=$BIN/etcd-$ETCD_VERSION
kwok_dir=$BIN/kwok-$KWOK_VERSION
helm_dir=$BIN/helm-$HELM_VERSION
kubeconform_dir=$BIN/kubeconform-$KUBECONFORM_VERSION
containerd_dir=$BIN/containerd-$CONTAINERD_VERSION
crictl_dir=$BIN/crictl-$CRICTL_VERSION

if [ "${1:-}" = "--print" ]; then
  printf 'kubernetes=%s\netcd=%s\nkwok=%s\nhelm=%s\nkubeconform=%s\ncontainerd=%s\ncrictl=%s\n' \
    "$k8s_dir" "$etcd_dir" "$kwok_dir" "$helm_dir" "$kubeconform_dir" "$containerd_dir" "$crictl_dir"
  exit 0
fi

mkdir -p "$BIN" "$SRC"
exec 9>"$CACHE/.build.lock"
flock 9

log() { printf '[build-tools] %s\n' "$*" >&2; }

# k8s.io/kubernetes cannot be required as is: its go.mod points every staging module
# (k8s.io/api, apimachinery, client-go, ...) at ./staging. The wrapper replaces each with the
# published v0.<minor>.<patch> that the same release tagged.
build_kubernetes() {
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
  local missing=0 c
  for c in "${cmds[@]}"; do [ -x "$k8s_dir/$c" ] || missing=1; done
  [ $missing = 1 ] || return 0
  local staging_version="v0.${K8S_VERSION#v1.}"
  local mod=$SRC/kubernetes-$K8S_VERSION
  log "building kubernetes $K8S_VERSION (staging $staging_version) in $mod"
  rm -rf "$mod" && mkdir -p "$mod"
  local upstream_mod
  upstream_mod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module nfv.dev/local-cluster/kubernetes"
    echo
    grep -E '^go [0-9.]+$' "$upstream_mod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$upstream_mod"
  } >"$mod/go.mod"
  {
    echo '//go:build tools'
    echo
    echo '// Package tools pins the commands this module builds.'
    echo 'package tools'
    echo
    echo 'import ('
    for c in "${cmds[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ')'
  } >"$mod/tools.go"
  (cd "$mod" && go mod tidy)
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version
  local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z -X $cv.gitVersion=$K8S_VERSION -X $cv.gitMajor=1 -X $cv.gitMinor=$minor"
  mkdir -p "$k8s_dir.tmp"
  for c in "${cmds[@]}"; do
    log "go build $c"
    (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$k8s_dir.tmp/$c" "k8s.io/kubernetes/cmd/$c")
  done
  rm -rf "$k8s_dir" && mv "$k8s_dir.tmp" "$k8s_dir"
}

# Debian's etcd (3.4) is older than current Kubernetes supports; etcd's own main module has
# replace directives, so a wrapper calls etcdmain from the server module.
build_etcd() {
  [ -x "$etcd_dir/etcd" ] && return 0
  local mod=$SRC/etcd-$ETCD_VERSION
  log "building etcd $ETCD_VERSION in $mod"
  rm -rf "$mod" && mkdir -p "$mod"
  cat >"$mod/go.mod" <<MOD
module nfv.dev/local-cluster/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$mod/main.go" <<'GO'
// Command etcd is etcd's own server entry point, built from the published server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$mod" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$etcd_dir.tmp/etcd" .)
  rm -rf "$etcd_dir" && mv "$etcd_dir.tmp" "$etcd_dir"
}

# Tools whose main module installs cleanly with `go install pkg@version`.
go_install() { # dir binary package version
  [ -x "$1/$2" ] && return 0
  log "go install $3@$4"
  GOBIN="$1.tmp" go install -trimpath -ldflags "-s -w" "$3@$4"
  rm -rf "$1" && mv "$1.tmp" "$1"
}

# containerd's daemon, its runc shim and ctr (for importing images), from the v2 main module, which
# has no replace directives. The btrfs snapshotter needs cgo and drops out with CGO_ENABLED=0.
build_containerd() {
  local cmds=(containerd containerd-shim-runc-v2 ctr) c pkgs=()
  local missing=0
  for c in "${cmds[@]}"; do [ -x "$containerd_dir/$c" ] || missing=1; done
  [ $missing = 1 ] || return 0
  for c in "${cmds[@]}"; do pkgs+=("github.com/containerd/containerd/v2/cmd/$c@$CONTAINERD_VERSION"); done
  log "go install containerd $CONTAINERD_VERSION (${cmds[*]})"
  GOBIN="$containerd_dir.tmp" go install -trimpath \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" "${pkgs[@]}"
  rm -rf "$containerd_dir" && mv "$containerd_dir.tmp" "$containerd_dir"
}

build_etcd
build_containerd
go_install "$crictl_dir" crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION"
go_install "$kwok_dir" kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
go_install "$kubeconform_dir" kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
go_install "$helm_dir" helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
build_kubernetes
log "all tools ready under $BIN"
