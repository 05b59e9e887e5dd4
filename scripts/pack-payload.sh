#!/bin/sh
# Packs the payload the outer binary carries (pkg/payload): MANIFEST first ("sha256 size path"
# per file, "link target path" per symlink), then the inner outpost program, the bundled
# binaries and the image archives, as one zstd stream. The order keeps binaries that share Go
# code (outpost, crictl, local-path, CoreDNS, containerd) close, within zstd's --long window.
# Usage: pack-payload.sh ARCHIVE INNER BINDIR IMAGE.tar...
# PAYLOAD_ZSTD: zstd's options (default --ultra -20 --long=28; the decoder accepts windows to 2^28).
set -eu
archive=$1
inner=$2
bindir=$3
shift 3
: "${PAYLOAD_ZSTD:=--ultra -20 --long=28 -T0}"
stage=$(mktemp -d "${TMPDIR:-/tmp}/outpost-payload.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/images"
cp "$inner" "$stage/bin/outpost"
for f in "$bindir"/*; do
	case $(basename "$f") in SHA256SUMS | ctr | kubectl | outpost) continue ;; esac
	[ -f "$f" ] && [ ! -L "$f" ] && cp "$f" "$stage/bin/"
done
for img in "$@"; do cp "$img" "$stage/images/"; done
# ctr is the containerd binary called by that name; kubectl is outpost's own.
ln -s containerd "$stage/bin/ctr"
ln -s outpost "$stage/bin/kubectl"

cd "$stage"
first="bin/outpost bin/crictl images/local-path.tar images/coredns.tar bin/containerd bin/containerd-shim-runc-v2 bin/runc"
order=""
for f in $first; do [ -f "$f" ] && order="$order $f"; done
for f in $(find bin images -type f | sort); do
	case " $order " in *" $f "*) ;; *) order="$order $f" ;; esac
done
links=$(find bin -type l | sort)
for f in $order; do
	printf '%s %s %s\n' "$(sha256sum "$f" | cut -c1-64)" "$(stat -c %s "$f")" "$f"
done >MANIFEST
for l in $links; do printf 'link %s %s\n' "$(readlink "$l")" "$l"; done >>MANIFEST
cd - >/dev/null
mkdir -p "$(dirname "$archive")"
# Temp files beside the assets dir, not in it (everything in it is embedded), on the same
# filesystem so each rename is atomic; the checksum goes first, the archive last: an
# interrupted pack leaves an old archive, which make packs again.
tmp=$(dirname "$(dirname "$archive")")/.pack-$$
# shellcheck disable=SC2086 # word splitting of the option list and file lists is meant
tar -C "$stage" --owner=0 --group=0 --numeric-owner --mtime=@0 --no-recursion -cf - MANIFEST $order $links |
	zstd -q $PAYLOAD_ZSTD -f -o "$tmp.zst"
# The unpacker accepts windows up to 2^28 (pkg/payload): a PAYLOAD_ZSTD beyond that fails here.
zstd -q -t --memory=256MB "$tmp.zst" || { rm -f "$tmp.zst"; echo "pack-payload: the archive needs a zstd window over 256 MiB: use --long=28 or less" >&2; exit 1; }
sha256sum "$tmp.zst" | cut -d' ' -f1 >"$tmp.sha256"
mv "$tmp.sha256" "$archive.sha256"
mv "$tmp.zst" "$archive"
echo "payload: wrote $archive ($(du -m "$archive" | cut -f1) MiB, $(wc -l <"$stage/MANIFEST") entries)" >&2
