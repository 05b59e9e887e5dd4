#!/bin/sh
# Builds the small binaries that Outpost bundles (containerd with ctr, shim, runc, CNI plugins, crictl)
# from their upstream Go modules, and our GPU helper, into OUTDIR/bin; scripts/pack-payload.sh packs them.
# Usage: build-payload.sh OUTDIR  (versions come from the environment; see versions.mk)
set -eu
out=$1
: "${CONTAINERD_VERSION:?}" "${RUNC_VERSION:?}" "${CNI_VERSION:?}" "${CRICTL_VERSION:?}"
bin=$out/bin
mkdir -p "$bin"
ldflags="-s -w"
tags_ctrd="no_btrfs no_devmapper no_zfs no_aufs no_drbd"

# Cross builds (GOARCH other than the host's): go install refuses GOBIN then, and puts the
# binary under GOPATH/bin/linux_ARCH instead.
host_arch=$(go env GOHOSTARCH)
target_arch=${GOARCH:-$host_arch}

build() { # module@version env...
	stamp=$out/.$(echo "$1" | tr '/@' '__')
	[ -f "$stamp" ] && return 0
	shift_mod=$1
	shift
	echo "payload: building $shift_mod for $target_arch" >&2
	if [ "$target_arch" = "$host_arch" ]; then
		env GOBIN="$(cd "$bin" && pwd)" GOFLAGS=-trimpath "$@" go install -ldflags "$ldflags" $BUILD_TAGS "$shift_mod"
	else
		env -u GOBIN GOFLAGS=-trimpath "$@" go install -ldflags "$ldflags" $BUILD_TAGS "$shift_mod"
		name=$(basename "${shift_mod%@*}")
		cp "$(go env GOPATH)/bin/linux_${target_arch}/${name}" "$bin/${name}"
	fi
	touch "$stamp"
}

BUILD_TAGS="-tags=$(echo $tags_ctrd | tr ' ' ',')"
build "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" CGO_ENABLED=0
# containerd and ctr as one binary (ctr is a link to it, made at unpacking): our own main
# package, in a module that pins the same containerd.
here=$(cd "$(dirname "$0")" && pwd)
pinned=$(awk '$1 == "require" && $2 == "github.com/containerd/containerd/v2" {print $3}' "$here/payload/containerd/go.mod")
[ "$pinned" = "$CONTAINERD_VERSION" ] || { echo "scripts/payload/containerd/go.mod pins containerd $pinned, versions.mk $CONTAINERD_VERSION: make them agree" >&2; exit 1; }
# Keyed by the main package and its module files too: an edit there rebuilds it.
src=$(cd "$here/payload/containerd" && cat main.go go.mod go.sum | sha256sum | cut -c1-16)
stamp=$out/.containerd-multicall-$CONTAINERD_VERSION-$src
if [ ! -f "$stamp" ]; then
	echo "payload: building containerd (and ctr) $CONTAINERD_VERSION for $target_arch" >&2
	absbin=$(cd "$bin" && pwd)
	(cd "$here/payload/containerd" && CGO_ENABLED=0 GOARCH=$target_arch go build -trimpath -ldflags "$ldflags -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION#v}" $BUILD_TAGS -o "$absbin/containerd" .)
	rm -f "$bin/ctr"
	touch "$stamp"
fi
for p in bridge host-local portmap loopback; do
	case $p in host-local) dir=ipam/$p ;; portmap) dir=meta/$p ;; *) dir=main/$p ;; esac
	BUILD_TAGS=""
	build "github.com/containernetworking/plugins/plugins/$dir@$CNI_VERSION" CGO_ENABLED=0
done
# crictl is a main package upstream (k3s links a fork that is a library): a binary of its own.
BUILD_TAGS=""
build "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" CGO_ENABLED=0
# runc needs cgo for seccomp; link it statically so it runs in any mount namespace.
BUILD_TAGS="-tags=seccomp,urfave_cli_no_docs,netgo,osusergo"
ldflags="-s -w -extldflags -static"
build "github.com/opencontainers/runc@$RUNC_VERSION" CGO_ENABLED=1

# The GPU helper, from this repository: the one part linked against the driver's libnvidia-ml
# (dynamically, with glibc; lazy binding, as go-nvml resolves NVML's symbols only once loaded).
echo "payload: building outpost-gpu for $target_arch" >&2
absbin=$(cd "$bin" && pwd)
(cd "$here/.." && CGO_ENABLED=1 GOARCH=$target_arch CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" \
	go build -trimpath -tags netgo,osusergo -ldflags "-s -w -extldflags=-Wl,-z,lazy" -o "$absbin/outpost-gpu" ./cmd/outpost-gpu)

# Left by older versions of this script: pack-payload.sh writes the manifest and the links.
rm -f "$bin/SHA256SUMS" "$bin/ctr"
