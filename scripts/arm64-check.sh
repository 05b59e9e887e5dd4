#!/bin/sh
# The arm64 build, run under qemu-user (make test): it is an AArch64 executable, and the paths
# that need no kernel of its own work: --version, check-config's table, the mock DGX A100.
# Usage: arm64-check.sh [--outer] BINARY. With --outer, BINARY is the file users download: it
# is unpacked (into a temp data dir) first, and the inner program it carries is checked; qemu-user
# cannot follow the outer binary's exec without binfmt_misc.
set -eu
outer=""
if [ "${1:-}" = --outer ]; then
	outer=$2
	shift 2
fi
bin=${1:-}
fail() {
	echo "arm64 check: $*" >&2
	exit 1
}
# qemu-user 7.2 spins forever in a dynamically linked cgo Go binary: a bounded wait, then a
# clear failure.
run() {
	timeout -s KILL 300 qemu-aarch64-static -L /usr/aarch64-linux-gnu "$bin" "$@" || {
		rc=$?
		[ $rc = 137 ] && fail "$bin $* did not finish in 300 s under qemu-user (a dynamically linked cgo binary hangs there: file says $(file -b "$bin" 2>/dev/null | cut -d, -f1-4))"
		return $rc
	}
}

if [ -n "$outer" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	printf 'data-dir: %s/data\n' "$tmp" >"$tmp/config.yaml"
	bin=$outer
	dir=$(OUTPOST_CONFIG_FILE=$tmp/config.yaml OUTPOST_UNPACK_ONLY=1 run) || fail "unpacking $outer failed: $dir"
	bin=$dir/bin/outpost
fi
[ -n "$bin" ] || fail "usage: arm64-check.sh [--outer] BINARY"
readelf -h "$bin" | grep -q 'Machine:.*AArch64' || fail "$bin is not an AArch64 executable"
out=$(run --version) || fail "--version failed: $out"
echo "$out" | grep -q '^outpost v' || fail "--version printed: $out"
# check-config may find the emulated host lacking (non-zero exit): its table is what counts.
out=$(run check-config 2>&1) || true
echo "$out" | grep -q 'cgroup version' || fail "check-config printed no table: $out"
out=$(run gpu info --gpu-mock dgxa100) || fail "gpu info --gpu-mock dgxa100 failed: $out"
n=$(echo "$out" | grep -c 'NVIDIA A100-SXM4-40GB' || true)
[ "$n" = 8 ] || fail "gpu info --gpu-mock dgxa100 showed $n A100s, want 8: $out"
echo "arm64 check: $(echo "$out" | head -1); --version, check-config and the mock DGX A100 work under qemu-user"
