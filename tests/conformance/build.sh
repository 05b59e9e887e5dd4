#!/usr/bin/env bash
# Builds the upstream Kubernetes conformance runner (e2e.test, ginkgo) and the Go programs the
# conformance images carry (agnhost, nonewprivs' nnp, sample-apiserver, etcd) from the Go module
# proxy, and busybox from Debian's source package, into $OUT (default
# /var/cache/outpost-conformance). images.sh beside it packs them.
# Each binary is built only when missing; builds run one at a time at low priority (shared CPUs).
set -euo pipefail
# the Kubernetes release the project builds (go.mod), unless told
K8S=${K8S:-$(cd "$(dirname "$0")" && go list -m -f '{{.Version}}' k8s.io/kubernetes)}
OUT=${OUT:-/var/cache/outpost-conformance}
SAMPLE_APISERVER=${SAMPLE_APISERVER:-v0.${K8S#v1.}} # k8s.io/sample-apiserver of the same release
ETCD=${ETCD:-v3.7.0}                               # e2e.test names registry.k8s.io/etcd:3.7.0-0
gob() { nice -n 19 go build "$@"; }
quiet() { local l; l=$(mktemp); "$@" >"$l" 2>&1 || { cat "$l"; rm -f "$l"; return 1; }; rm -f "$l"; }
mkdir -p "$OUT/mod"
# binaries built for another release (or etcd/sample-apiserver version) are built again
stamp="$K8S $SAMPLE_APISERVER $ETCD"
if [ "$(cat "$OUT/built-for" 2>/dev/null)" != "$stamp" ]; then
  rm -f "$OUT"/{e2e.test,agnhost,ginkgo,nnp,sample-apiserver,etcd,busybox,images.txt}
fi
cd "$OUT/mod"
go mod download -json "k8s.io/kubernetes@$K8S" >/dev/null
gomod=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S/go.mod
minor=0.${K8S#v1.}
cat > tools.go <<'G'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/images/agnhost"
)
G
{ echo 'module conformancetools'; echo; echo 'go 1.26.0'; echo; echo "require k8s.io/kubernetes $K8S"; echo; echo 'replace (';
  for m in $(grep -E '^\s+k8s.io/.* => ' "$gomod" | awk '{print $1}' | grep -v -E 'sample-(cli|controller)'); do echo "	$m => $m v$minor"; done; echo ')'; } > go.mod
go mod tidy -e >/dev/null 2>&1
# the specs read their own version (pod-security fixtures): stamp it as a release build would
v=k8s.io/component-base/version; m=${K8S#v1.}; m=${m%%.*}
ld="-X $v.gitVersion=$K8S -X $v.gitMajor=1 -X $v.gitMinor=$m -X $v.gitTreeState=clean"
[ -x "$OUT/e2e.test" ] || nice -n 19 go test -c -ldflags "$ld" -o "$OUT/e2e.test" k8s.io/kubernetes/test/e2e
[ -x "$OUT/agnhost" ] || CGO_ENABLED=0 gob -o "$OUT/agnhost" k8s.io/kubernetes/test/images/agnhost
"$OUT/e2e.test" --list-images > "$OUT/images.txt" 2>/dev/null || true
[ -x "$OUT/ginkgo" ] || gob -o "$OUT/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
# nonewprivs: test/images/nonewprivs/nnp.go prints its effective uid (the image makes it setuid)
[ -x "$OUT/nnp" ] || CGO_ENABLED=0 gob -o "$OUT/nnp" k8s.io/kubernetes/test/images/nonewprivs
# standalone modules: sample-apiserver and etcd keep their own dependency sets, as upstream builds
# them (test/images/sample-apiserver/Makefile: a plain `go build .` of k8s.io/sample-apiserver)
standalone() { # standalone NAME MODULE@VERSION MAIN-PACKAGE
  local d=$OUT/mod-$1; mkdir -p "$d"; cd "$d"
  printf 'module conformance-%s\n\ngo 1.26.0\n' "$1" > go.mod; rm -f go.sum
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$3" > tools.go
  quiet go get "$2"; quiet go mod tidy
  CGO_ENABLED=0 gob -o "$OUT/$1" "$3"
}
[ -x "$OUT/sample-apiserver" ] || standalone sample-apiserver "k8s.io/sample-apiserver@$SAMPLE_APISERVER" k8s.io/sample-apiserver
[ -x "$OUT/etcd" ] || standalone etcd "go.etcd.io/etcd/server/v3@$ETCD" go.etcd.io/etcd/server/v3
# busybox: upstream's source at Debian's version (its orig tarball, which apt checks against the
# signed index) with Debian's CVE fixes, upstream's defconfig and a static link, as the busybox
# image under registry.k8s.io's e2e busybox is built. Debian's own binary will not do: it reverts
# upstream's ash change that keeps environment variables whose names hold dashes (the env specs
# read them), and its ash runs its own applets (nc) before PATH.
build_busybox() {
  local d=$OUT/busybox-src codename p
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  rm -rf "$d"; mkdir -p "$d/lists" "$d/src"
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$codename" > "$d/src.sources"
  local apt=(apt-get -q -o Dir::Etc::SourceList="$d/src.sources" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$d/lists" -o APT::Sandbox::User=root)
  (cd "$d" && quiet "${apt[@]}" update && quiet "${apt[@]}" source --download-only busybox)
  tar -C "$d/src" --strip-components=1 -xjf "$d"/busybox_*.orig.tar.bz2
  mkdir -p "$d/debian"; tar -C "$d/debian" --strip-components=1 -xJf "$d"/busybox_*.debian.tar.xz
  for p in $(grep -E '^CVE-' "$d/debian/patches/series"); do patch -d "$d/src" -p1 -s < "$d/debian/patches/$p"; done
  (cd "$d/src" && export SOURCE_DATE_EPOCH=0 KCONFIG_NOTIMESTAMP=1 && quiet make defconfig &&
    sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config && grep -qx CONFIG_STATIC=y .config &&
    quiet nice -n 19 make -j"$(nproc)" busybox)
  install -m 755 "$d/src/busybox" "$OUT/busybox"; rm -rf "$d"
}
[ -x "$OUT/busybox" ] || build_busybox
echo "$stamp" > "$OUT/built-for"
echo "built: $(cd "$OUT" && ls e2e.test ginkgo agnhost nnp sample-apiserver etcd busybox | tr '\n' ' ')"
