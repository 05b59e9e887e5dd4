#!/usr/bin/env bash
# Makes docker-archive image tars under $OUT/images for every image the Kubernetes $K8S
# [Conformance] specs run, tagged with the names e2e.test expects (images.txt), without a registry:
# binaries from build.sh (Go module proxy, busybox from Debian's source) and Debian 12 packages.
#   agnhost (2.55, 2.66.1)   busybox (1.36.1-1, 1.37.0-2)   pause   nginx (1.27.0-2, 1.28.0-2)
#   kitten   nautilus   nonewprivs   nonroot   glibc-dns-testing   sample-apiserver   etcd
# Run build.sh first. Each archive is rebuilt from scratch, the same bytes for the same host packages.
set -euo pipefail
trap 'echo "images.sh: failed at line $LINENO" >&2' ERR
OUT=${OUT:-/var/cache/outpost-conformance}
K8S=${K8S:-$(cd "$(dirname "$0")" && go list -m -f '{{.Version}}' k8s.io/kubernetes)}
src=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S
imgsrc=$src/test/images
for f in images.txt agnhost nnp sample-apiserver etcd busybox; do
  [ -s "$OUT/$f" ] || { echo "no $OUT/$f: run build.sh first" >&2; exit 2; }
done
[ -d "$imgsrc" ] || go mod download "k8s.io/kubernetes@$K8S"
mkdir -p "$OUT/images" "$OUT/debs"

# Debian packages whose files go into the images (`make conformance` installs them)
pkgs=(curl netcat-openbsd bash dash coreutils grep sed hostname libc-bin base-files
  bind9-dnsutils bind9-host gcc libc6-dev)
missing=(); for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] || { echo "missing Debian packages: ${missing[*]}: apt-get install them (make conformance does)" >&2; exit 2; }

# every tag e2e.test names for an image, as a JSON list (one archive serves them all)
tags() {
  local t; t=$(grep -E "^$1:" "$OUT/images.txt" | sort -uV | sed 's/.*/"&"/' | paste -sd, -)
  [ -n "$t" ] || { echo "images.txt names no $1" >&2; exit 1; }
  echo "$t"
}
P=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# mk NAME TAGS CONFIG ROOT...: one layer per ROOT dir (a shared ROOT gives the same layer digest,
# which containerd stores once); CONFIG holds the image config members besides Env.
rtar() { tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$2" .; }
mk() {
  local name=$1 tags=$2 conf=$3 d i=0 r sum layers='' diffs='' cfg tars=(); shift 3; d=$(mktemp -d -p "$w")
  [ -n "$tags" ] || { echo "no tags for $name" >&2; exit 1; }
  for r; do
    rtar "$r" "$d/l$i.tar"; sum=$(sha256sum "$d/l$i.tar" | cut -d' ' -f1)
    tars+=("l$i.tar"); layers+="${layers:+,}\"l$i.tar\""; diffs+="${diffs:+,}\"sha256:$sum\""; i=$((i + 1))
  done
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=%s"],%s},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$P" "$conf" "$diffs" > "$d/c.json"
  cfg=$(sha256sum "$d/c.json" | cut -d' ' -f1); mv "$d/c.json" "$d/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":[%s],"Layers":[%s]}]' "$cfg" "$tags" "$layers" > "$d/manifest.json"
  tar -C "$d" --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$OUT/images/$name.tar.new" \
    manifest.json "$cfg.json" "${tars[@]}"
  mv "$OUT/images/$name.tar.new" "$OUT/images/$name.tar"
  rm -rf "$d"
}
# libs ROOT ELF...: every shared library the ELF files load, from this host into ROOT
libs() {
  local r=$1 l; shift
  if ldd "$@" 2>/dev/null | grep -q 'not found'; then echo "missing libraries: $*" >&2; exit 1; fi
  for l in $(ldd "$@" 2>/dev/null | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
    [ -e "$r$l" ] || { mkdir -p "$r$(dirname "$l")"; cp -L "$l" "$r$l"; }
  done
}
# copy ROOT FILE...: host files at the same paths (links kept as links) with their libraries, so
# Debian's dynamically linked tools run in the image
copy() {
  local r=$1 f; shift
  for f; do mkdir -p "$r$(dirname "$f")"; cp -a "$f" "$r$f"; done
  libs "$r" "$@"
}
# debfiles PKG...: the files and links an installed Debian package put on this host, less docs
debfiles() {
  dpkg -L "$@" | grep '^/' | grep -vE '^/usr/share/(doc|man|info|locale|lintian|bug)/' |
    while read -r f; do if [ ! -d "$f" ] && { [ -L "$f" ] || [ -f "$f" ]; }; then echo "$f"; fi; done
}
nsswitch='passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n'
bb() { # bb DIR: build.sh's static busybox with the users and groups the e2e images carry
  local r=$1 c; mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/usr/local/bin" "$r/var"
  cp "$OUT/busybox" "$r/bin/busybox"
  for c in $("$r/bin/busybox" --list); do [ -e "$r/bin/$c" ] || ln -s busybox "$r/bin/$c"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\ngroup-defined-in-image:x:50000:user-defined-in-image\nnobody:x:65534:\n' > "$r/etc/group"
  printf "$nsswitch" > "$r/etc/nsswitch.conf"; chmod 1777 "$r/tmp"
}
agnbase() { # agnbase DIR: bb plus what upstream's agnhost adds to Alpine (apk add bind-tools curl
  # netcat-openbsd bash …): curl, OpenBSD nc and bash, ahead of busybox's in PATH; getent (the DNS
  # specs' /etc/hosts probes) and dig/nslookup/host from bind9-dnsutils (their dig probes, the
  # ExternalName service's nslookup). /bin/sh stays busybox's ash, as on Alpine.
  local r=$1; bb "$r"; mkdir -p "$r/uploads" "$r/etc/ssl/certs"
  copy "$r" /usr/bin/curl /bin/nc.openbsd /bin/bash
  mv "$r/usr/bin/curl" "$r/usr/local/bin/curl"; mv "$r/bin/nc.openbsd" "$r/usr/local/bin/nc"
  copy "$r" /usr/bin/getent /usr/bin/dig /usr/bin/nslookup /usr/bin/host; rm -f "$r/bin/nc" "$r/bin/nslookup"
}
w=$(mktemp -d -p "$OUT"); trap 'rm -rf "$w"' EXIT
e2e=registry.k8s.io/e2e-test-images

# agnhost: the agnhost binary at / (ENTRYPOINT /agnhost, CMD pause) with porter's TLS pair, as in
# test/images/agnhost/Dockerfile. Upstream's base is Alpine; ours is busybox plus Debian tools, so
# the image-volume spec's check for "Alpine Linux" in kitten's etc/os-release fails, and rightly.
agnbase "$w/agn"; cp "$OUT/agnhost" "$w/agn/agnhost"; ln -s agnhost "$w/agn/agnhost-2"
cp "$imgsrc/agnhost/porter/localhost.crt" "$imgsrc/agnhost/porter/localhost.key" "$w/agn/"
agn='"Entrypoint":["/agnhost"],"Cmd":["pause"],"ExposedPorts":{"80/tcp":{},"8080/tcp":{},"8081/tcp":{},"9376/tcp":{},"5000/tcp":{}}'
mk agnhost "$(tags $e2e/agnhost)" "$agn" "$w/agn"

# kitten, nautilus: agnhost's layer plus <name>.jpg and data.json at /, CMD test-webserver (serves /)
for n in kitten nautilus; do
  mkdir -p "$w/$n"; install -m 644 "$imgsrc/$n/html/$n.jpg" "$imgsrc/$n/html/data.json" "$w/$n/"
  mk "$n" "$(tags $e2e/$n)" '"Entrypoint":["/agnhost"],"Cmd":["test-webserver"],"ExposedPorts":{"80/tcp":{}}' "$w/agn" "$w/$n"
done

# busybox (both tags): busybox alone, as upstream's image (FROM busybox:1.37) is
bb "$w/bb"; mk busybox "$(tags $e2e/busybox)" '"Cmd":["sh"]' "$w/bb"

# pause: the real pause.c of the release (build/pause), static, as registry.k8s.io/pause is built
ptag=$(grep -m1 '^registry.k8s.io/pause:' "$OUT/images.txt"); mkdir -p "$w/pause"
gcc -Os -Wall -Werror -static -DVERSION="v${ptag##*:}-outpost" -o "$w/pause/pause" "$src/build/pause/linux/pause.c"
mk pause "\"$ptag\"" '"Entrypoint":["/pause"],"User":"65535:65535"' "$w/pause"

# nonewprivs: test/images/nonewprivs nnp (prints its effective uid), setuid root, CMD nnp
bb "$w/nnp"; install -m 4755 "$OUT/nnp" "$w/nnp/usr/local/bin/nnp"
mk nonewprivs "$(tags $e2e/nonewprivs)" '"Cmd":["nnp"]' "$w/nnp"

# nonroot: a plain base whose image config says USER 1234 (the specs run `id -u` in it)
bb "$w/nonroot"; mk nonroot "$(tags $e2e/nonroot)" '"Cmd":["/bin/sh"],"User":"1234"' "$w/nonroot"

# glibc-dns-testing: a Debian 12 userland (glibc resolver: getent; dig/nslookup/host; dash as sh,
# coreutils seq/sleep the DNS probe loops use), laid out usr-merged like debian:bookworm-slim
r=$w/glibc; mkdir -p "$r/usr/bin" "$r/usr/sbin" "$r/usr/lib" "$r/usr/lib64" "$r/etc" "$r/tmp" "$r/root"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$r/$d"; done
mapfile -t files < <(debfiles dash bash coreutils grep sed hostname libc-bin base-files bind9-dnsutils bind9-host)
copy "$r" "${files[@]}"
ln -sf dash "$r/bin/sh"; chmod 1777 "$r/tmp"
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"; printf "$nsswitch" > "$r/etc/nsswitch.conf"
mk glibc-dns-testing "$(tags $e2e/glibc-dns-testing)" '"Cmd":["bash"]' "$r"

# nginx (both tags): Debian 12's nginx (1.22) configured like the upstream nginx image: master as
# root, workers as user nginx (101), listens on 80 (and [::]:80 where the pod has IPv6, as its
# entrypoint decides), serves /usr/share/nginx/html (the "Welcome to nginx!" index), logs to
# stdout/stderr, ENTRYPOINT /docker-entrypoint.sh, CMD nginx -g 'daemon off;', STOPSIGNAL SIGQUIT.
# The .debs are unpacked, not installed: installing would start nginx on this host.
dl() { apt-get download -qq nginx nginx-common >/dev/null 2>&1; }
(cd "$OUT/debs" && { ls nginx_*.deb nginx-common_*.deb >/dev/null 2>&1 || dl || { apt-get update -qq && dl; }; })
mkdir -p "$w/deb"; for f in "$OUT"/debs/nginx_*.deb "$OUT"/debs/nginx-common_*.deb; do dpkg-deb -x "$f" "$w/deb"; done
r=$w/nginx; bb "$r"
mkdir -p "$r/usr/sbin" "$r/etc/nginx/conf.d" "$r/etc/nginx/listen.d" "$r/usr/share/nginx" "$r/var/log/nginx" "$r/var/lib/nginx" "$r/var/cache/nginx" "$r/run" "$r/var/lock"
cp "$w/deb/usr/sbin/nginx" "$r/usr/sbin/nginx"; cp -r "$w/deb/usr/share/nginx/html" "$r/usr/share/nginx/"
cp "$w/deb/etc/nginx/mime.types" "$r/etc/nginx/"
libs "$r" "$r/usr/sbin/nginx"
echo 'nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin' >> "$r/etc/passwd"; echo 'nginx:x:101:' >> "$r/etc/group"
cat > "$r/etc/nginx/nginx.conf" <<'C'
user  nginx;
worker_processes  auto;
error_log  /var/log/nginx/error.log notice;
pid        /run/nginx.pid;
events {
    worker_connections  1024;
}
http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;
    access_log  /var/log/nginx/access.log;
    sendfile        on;
    keepalive_timeout  65;
    include /etc/nginx/conf.d/*.conf;
}
C
cat > "$r/etc/nginx/conf.d/default.conf" <<'C'
server {
    listen       80;
    include /etc/nginx/listen.d/*.conf;
    server_name  localhost;
    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }
    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
C
cat > "$r/docker-entrypoint.sh" <<'S'
#!/bin/sh
# like upstream's 10-listen-on-ipv6-by-default.sh: listen on [::]:80 too where IPv6 is there
if [ "$1" = nginx ] && [ -f /proc/net/if_inet6 ]; then
  echo 'listen [::]:80;' > /etc/nginx/listen.d/ipv6.conf 2>/dev/null || true
fi
exec "$@"
S
chmod 755 "$r/docker-entrypoint.sh"
# the config parses and every library loads inside the image (logs are plain files while it checks)
touch "$r/var/log/nginx/access.log" "$r/var/log/nginx/error.log"; chroot "$r" /usr/sbin/nginx -t -q
ln -sf /dev/stdout "$r/var/log/nginx/access.log"; ln -sf /dev/stderr "$r/var/log/nginx/error.log"
mk nginx "$(tags $e2e/nginx)" '"Entrypoint":["/docker-entrypoint.sh"],"Cmd":["nginx","-g","daemon off;"],"StopSignal":"SIGQUIT","ExposedPorts":{"80/tcp":{}}' "$r"

# sample-apiserver: k8s.io/sample-apiserver at the release's version, ENTRYPOINT /sample-apiserver
# (the aggregator spec passes --etcd-servers, TLS files, audit flags; it serves HTTPS on 443)
bb "$w/sas"; cp "$OUT/sample-apiserver" "$w/sas/sample-apiserver"
mk sample-apiserver "$(tags $e2e/sample-apiserver)" '"Entrypoint":["/sample-apiserver"]' "$w/sas"

# etcd: the etcd server at /usr/local/bin/etcd (the spec runs it as the sample-apiserver's sidecar
# with --listen-client-urls/--advertise-client-urls http://127.0.0.1:2379; data in /default.etcd)
bb "$w/etcd"; mkdir -p "$w/etcd/var/lib/etcd"; cp "$OUT/etcd" "$w/etcd/usr/local/bin/etcd"
mk etcd "$(tags registry.k8s.io/etcd)" '"Cmd":["/usr/local/bin/etcd"],"ExposedPorts":{"2379/tcp":{},"2380/tcp":{}}' "$w/etcd"

# smoke checks inside the image roots: the tools the specs exec load their libraries and run
export PATH=$P
chroot "$w/agn" /bin/sh -c 'dig -v && nslookup -version && getent passwd root && curl --version && nc -h 2>&1 | grep -q usage' >/dev/null 2>&1
# upstream's ash: variables named with dashes reach the commands it runs (the ConfigMap/Secret env
# specs), and a write to a read-only root fails with its message (the read-only busybox spec)
env p-data-1=x chroot "$w/bb" /bin/sh -c env | grep -qx p-data-1=x
{ chroot "$w/bb" /bin/sh -c 'echo > /none/x' || true; } 2>&1 | grep -q "^/bin/sh: can't create /none/x"
chroot "$w/glibc" /bin/sh -c 'dig -v && getent passwd root && seq 1 2 && hostname --version' >/dev/null 2>&1
chroot --userspec=1000:1000 "$w/nnp" /usr/local/bin/nnp | grep -qx 'Effective uid: 0' # setuid works
setpriv --no-new-privs chroot --userspec=1000:1000 "$w/nnp" /usr/local/bin/nnp | grep -qx 'Effective uid: 1000'
ls -la "$OUT/images"
