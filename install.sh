#!/bin/sh
# Outpost installer: curl -sfL https://…/install.sh | sh -
#
# Server:  curl -sfL URL/install.sh | sh -
# Agent:   curl -sfL URL/install.sh | OUTPOST_URL=https://server:6443 OUTPOST_TOKEN=… sh -   (the server's DATA/server/agent-token)
# Offline: copy outpost to /usr/local/bin, images to /var/lib/outpost/agent/images/, then
#          INSTALL_OUTPOST_SKIP_DOWNLOAD=true sh install.sh
#
# INSTALL_OUTPOST_ARTIFACT_URL  where outpost-ARCH and sha256sum-ARCH.txt are (default: releases)
# INSTALL_OUTPOST_VERSION       a release, e.g. v0.1.0 (files under ARTIFACT_URL/VERSION/)
# INSTALL_OUTPOST_CHANNEL       a channel whose version is read from ARTIFACT_URL/channels/CHANNEL
# INSTALL_OUTPOST_BIN_DIR       default /usr/local/bin
# INSTALL_OUTPOST_SYSTEMD_DIR   default /etc/systemd/system
# INSTALL_OUTPOST_SYMLINK       skip | force (default: kubectl, ctr and crictl links unless those exist)
# INSTALL_OUTPOST_EXEC          extra arguments for `outpost server|agent`
# INSTALL_OUTPOST_SKIP_DOWNLOAD true: use the binary already in the bin dir
# INSTALL_OUTPOST_SKIP_ENABLE   true: do not enable the service
# INSTALL_OUTPOST_SKIP_START    true: do not start it
# Every OUTPOST_* variable goes into the service's environment file (mode 0600).
set -eu

DEFAULT_ARTIFACT_URL=https://github.com/outpostk8s/outpost/releases/latest/download

info() { echo "[outpost-install] $*"; }
fatal() {
	echo "[outpost-install] ERROR: $*" >&2
	exit 1
}

setup_env() {
	BIN_DIR=${INSTALL_OUTPOST_BIN_DIR:-/usr/local/bin}
	SYSTEMD_DIR=${INSTALL_OUTPOST_SYSTEMD_DIR:-/etc/systemd/system}
	OPENRC_DIR=/etc/init.d
	if [ -n "${OUTPOST_URL:-}" ]; then
		CMD=agent
		if [ -z "${OUTPOST_TOKEN:-}" ] && [ -z "${OUTPOST_TOKEN_FILE:-}" ]; then
			fatal "OUTPOST_URL is set, so this is an agent: set OUTPOST_TOKEN (or OUTPOST_TOKEN_FILE) to the server's agent token (on the server: cat /var/lib/outpost/server/agent-token)"
		fi
		SERVICE=outpost-agent
	else
		CMD=server
		SERVICE=outpost
	fi
	UNIT=${SYSTEMD_DIR}/${SERVICE}.service
	ENV_FILE=${SYSTEMD_DIR}/${SERVICE}.service.env
	KILLALL=${BIN_DIR}/outpost-killall.sh
	UNINSTALL=${BIN_DIR}/${SERVICE}-uninstall.sh
	if [ "$(id -u)" != 0 ]; then
		fatal "run the installer as root (sudo sh -)"
	fi
	case $(uname -m) in
	x86_64 | amd64) ARCH=amd64 ;;
	aarch64 | arm64) ARCH=arm64 ;;
	*) fatal "unsupported architecture $(uname -m): Outpost ships amd64 and arm64" ;;
	esac
}

# --- download and verify before anything is written --------------------------------------

fetch() { # url dest
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL -o "$2" "$1" || return 1
	elif command -v wget >/dev/null 2>&1; then
		wget -qO "$2" "$1" || return 1
	else
		fatal "neither curl nor wget is installed"
	fi
}

artifact_base() {
	base=${INSTALL_OUTPOST_ARTIFACT_URL:-$DEFAULT_ARTIFACT_URL}
	base=${base%/}
	if [ -n "${INSTALL_OUTPOST_VERSION:-}" ]; then
		echo "${base}/${INSTALL_OUTPOST_VERSION}"
	elif [ -n "${INSTALL_OUTPOST_CHANNEL:-}" ]; then
		fetch "${base}/channels/${INSTALL_OUTPOST_CHANNEL}" "$TMP/channel" || fatal "cannot read channel ${INSTALL_OUTPOST_CHANNEL} from ${base}/channels/"
		echo "${base}/$(tr -d ' \n\r' <"$TMP/channel")"
	else
		echo "$base"
	fi
}

download_verified() {
	base=$(artifact_base)
	info "downloading outpost-${ARCH} from ${base}"
	fetch "${base}/sha256sum-${ARCH}.txt" "$TMP/sums" || fatal "cannot download ${base}/sha256sum-${ARCH}.txt"
	fetch "${base}/outpost-${ARCH}" "$TMP/outpost" || fatal "cannot download ${base}/outpost-${ARCH}"
	want=$(awk -v f="outpost-${ARCH}" '$2 == f || $2 == "*"f {print $1}' "$TMP/sums")
	[ -n "$want" ] || fatal "sha256sum-${ARCH}.txt has no line for outpost-${ARCH}"
	got=$(sha256sum "$TMP/outpost" | awk '{print $1}')
	if [ "$want" != "$got" ]; then
		fatal "checksum mismatch for outpost-${ARCH} (want ${want}, got ${got}): nothing was installed"
	fi
	chmod 755 "$TMP/outpost"
	"$TMP/outpost" --version >/dev/null 2>&1 || fatal "the downloaded binary does not run on this machine: nothing was installed"
}

# --- install ------------------------------------------------------------------------------

# record_created notes a path this installer (or Outpost) creates, unless it was already there
# before the first install: the uninstaller removes exactly these.
record_created() {
	for p in "$@"; do
		if [ ! -e "$p" ] && [ ! -L "$p" ]; then
			echo "$p" >>"$TMP/created"
		fi
	done
}

install_binary() {
	mkdir -p "$BIN_DIR"
	if [ "${INSTALL_OUTPOST_SKIP_DOWNLOAD:-}" = true ]; then
		[ -x "${BIN_DIR}/outpost" ] || fatal "INSTALL_OUTPOST_SKIP_DOWNLOAD=true but ${BIN_DIR}/outpost is missing: copy the binary there first"
		info "using ${BIN_DIR}/outpost (air-gapped install)"
		return
	fi
	cp "$TMP/outpost" "${BIN_DIR}/.outpost.new"
	mv -f "${BIN_DIR}/.outpost.new" "${BIN_DIR}/outpost"
	info "installed ${BIN_DIR}/outpost"
}

install_links() {
	for name in kubectl ctr crictl; do
		link=${BIN_DIR}/${name}
		case ${INSTALL_OUTPOST_SYMLINK:-} in
		skip) continue ;;
		force) ;;
		*)
			if [ -L "$link" ] && [ "$(readlink "$link")" = "${BIN_DIR}/outpost" ]; then
				continue
			fi
			if command -v "$name" >/dev/null 2>&1; then
				info "skipping ${name} link: $(command -v "$name") exists"
				continue
			fi
			;;
		esac
		ln -sf "${BIN_DIR}/outpost" "$link"
		info "linked ${link}"
	done
}

write_env_file() {
	umask 077
	env | grep '^OUTPOST_' | sort >"${ENV_FILE}.new" || true
	chmod 600 "${ENV_FILE}.new"
	mv -f "${ENV_FILE}.new" "$ENV_FILE"
	umask 022
}

exec_args() {
	args=$CMD
	if [ -n "${INSTALL_OUTPOST_EXEC:-}" ]; then
		args="$args ${INSTALL_OUTPOST_EXEC}"
	fi
	echo "$args"
}

write_systemd_unit() {
	mkdir -p "$SYSTEMD_DIR"
	cat >"${UNIT}.new" <<EOF
[Unit]
Description=Outpost Kubernetes ${CMD}
Documentation=https://github.com/outpostk8s/outpost
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=exec
EnvironmentFile=-${ENV_FILE}
# Pods belong to containerd's shims, not to this service: stopping or upgrading Outpost must
# not kill them.
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=on-failure
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${BIN_DIR}/outpost $(exec_args)
EOF
	mv -f "${UNIT}.new" "$UNIT"
	chmod 644 "$UNIT"
	info "wrote ${UNIT}"
}

write_openrc_service() {
	svc=${OPENRC_DIR}/${SERVICE}
	cat >"${svc}.new" <<EOF
#!/sbin/openrc-run
description="Outpost Kubernetes ${CMD}"
command="${BIN_DIR}/outpost"
command_args="$(exec_args)"
# supervise-daemon runs the command without a shell: the log goes through its own options.
output_log="/var/log/${SERVICE}.log"
error_log="/var/log/${SERVICE}.log"
pidfile="/run/${SERVICE}.pid"
respawn_delay=5
respawn_max=0
depend() { need net; after firewall; }
start_pre() {
	set -o allexport
	[ -f ${ENV_FILE} ] && . ${ENV_FILE}
	set +o allexport
	modprobe br_netfilter 2>/dev/null || true
	modprobe overlay 2>/dev/null || true
}
supervisor=supervise-daemon
EOF
	mv -f "${svc}.new" "$svc"
	chmod 755 "$svc"
	info "wrote ${svc}"
}

write_killall() {
	cat >"${KILLALL}.new" <<'EOF'
#!/bin/sh
# Stops Outpost, its containerd, shims and pods, and removes their mounts, network interfaces
# and iptables rules. The data dir is kept.
[ "$(id -u)" = 0 ] || exec sudo "$0" "$@"
for s in outpost outpost-agent; do
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl stop "$s" 2>/dev/null || true
	elif [ -x "/etc/init.d/$s" ]; then
		"/etc/init.d/$s" stop 2>/dev/null || true
	fi
done
descendants() {
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}
pids=""
for p in $(ps -eo pid=,args= | awk '/\/var\/lib\/outpost\/data\/[^ ]*\/(containerd|containerd-shim-runc-v2)|\/outpost (server|agent)/ {print $1}'); do
	[ "$p" = "$$" ] && continue
	pids="$pids $p $(descendants "$p")"
done
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
# SIGKILL lands asynchronously: wait until they are gone (zombies count as gone), or a file one
# was writing can appear again after the removals below.
alive() {
	for p in $pids; do
		[ -r "/proc/$p/stat" ] && [ "$(sed 's/.*) //' "/proc/$p/stat" | cut -c1)" != Z ] && return 0
	done
	return 1
}
i=0
while [ -n "$pids" ] && [ "$i" -lt 10 ] && alive; do
	sleep 1
	i=$((i + 1))
done
# Mounts under Outpost's dirs, deepest first. The data dir itself stays mounted if it is a
# disk of its own (only what is mounted inside it goes); the kubelet's dir is a bind mount of
# itself and goes too.
for d in /run/outpost /var/lib/outpost/ /var/lib/kubelet /run/netns/cni-; do
	awk -v d="$d" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
done
rm -rf /run/outpost
ip link delete outpost0 2>/dev/null || true
ip link delete flannel.1 2>/dev/null || true
for t in iptables ip6tables; do
	command -v "${t}-save" >/dev/null 2>&1 || continue
	"${t}-save" | grep -v -e 'KUBE-' -e 'CNI-' -e 'FLANNEL' -e 'OUTPOST-' | "${t}-restore" 2>/dev/null || true
done
# NetworkPolicy's address sets, once no rule refers to them.
if command -v ipset >/dev/null 2>&1; then
	ipset list -n 2>/dev/null | grep -E '^(inet6:)?KUBE-(SRC|DST)-' | while read -r set; do ipset destroy "$set" 2>/dev/null || true; done
fi
EOF
	chmod 755 "${KILLALL}.new"
	mv -f "${KILLALL}.new" "$KILLALL"
}

# The uninstaller's lines are written literally: its $-expressions expand when it runs.
# shellcheck disable=SC2016
write_uninstall() {
	# Keep the first install's record across upgrades: an upgrade must not claim paths that
	# the first install found already there.
	if [ -f "$UNINSTALL" ]; then
		sed -n 's/^#created //p' "$UNINSTALL" >"$TMP/created.prev"
		cat "$TMP/created.prev" "$TMP/created" 2>/dev/null | sort -u >"$TMP/created.all"
	else
		sort -u "$TMP/created" >"$TMP/created.all" 2>/dev/null || : >"$TMP/created.all"
	fi
	{
		echo '#!/bin/sh'
		echo '# Removes what the Outpost installer and Outpost created on this machine, and nothing else.'
		echo 'set -u'
		echo '[ "$(id -u)" = 0 ] || exec sudo "$0" "$@"'
		echo "${KILLALL}"
		echo "if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl disable ${SERVICE} 2>/dev/null; systemctl daemon-reload; fi"
		echo "if [ -x /etc/init.d/${SERVICE} ] && command -v rc-update >/dev/null 2>&1; then rc-update delete ${SERVICE} default 2>/dev/null; fi"
		echo 'remove() { if [ -d "$1" ] && [ ! -L "$1" ]; then rm -rf "$1"; else rm -f "$1"; fi; }'
		sed 's/^/#created /' "$TMP/created.all"
		echo 'sed -n "s/^#created //p" "$0" | sort -r | while read -r p; do remove "$p"; done'
		echo "rm -f \"\$0\""
	} >"${UNINSTALL}.new"
	chmod 755 "${UNINSTALL}.new"
	mv -f "${UNINSTALL}.new" "$UNINSTALL"
}

start_service() {
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload
		[ "${INSTALL_OUTPOST_SKIP_ENABLE:-}" = true ] || systemctl enable "$SERVICE" >/dev/null
		if [ "${INSTALL_OUTPOST_SKIP_START:-}" != true ]; then
			info "starting ${SERVICE}"
			systemctl restart "$SERVICE"
		fi
	elif [ "$INIT" = openrc ]; then
		[ "${INSTALL_OUTPOST_SKIP_ENABLE:-}" = true ] || rc-update add "$SERVICE" default >/dev/null
		if [ "${INSTALL_OUTPOST_SKIP_START:-}" != true ]; then
			info "starting ${SERVICE}"
			"/etc/init.d/${SERVICE}" restart
		fi
	else
		info "no running systemd or OpenRC: start it by hand: ${BIN_DIR}/outpost $(exec_args)"
	fi
}

main() {
	setup_env
	TMP=$(mktemp -d)
	trap 'rm -rf "$TMP"' EXIT
	: >"$TMP/created"
	if [ "${INSTALL_OUTPOST_SKIP_DOWNLOAD:-}" != true ]; then
		download_verified
	fi
	if command -v openrc-run >/dev/null 2>&1 || [ -x /sbin/openrc-run ]; then
		INIT=openrc
	else
		INIT=systemd
	fi
	if [ "${INSTALL_OUTPOST_SKIP_DOWNLOAD:-}" != true ]; then
		record_created "${BIN_DIR}/outpost"
	fi
	record_created "${BIN_DIR}/kubectl" "${BIN_DIR}/ctr" "${BIN_DIR}/crictl" "$KILLALL" "$ENV_FILE" "$UNIT" "/etc/init.d/${SERVICE}" \
		/etc/outpost /etc/outpost/outpost.yaml /var/lib/outpost /var/lib/kubelet /var/lib/cni /var/log/pods /var/log/containers \
		/var/run/cdi/nvidia.yaml
	install_binary
	install_links
	write_env_file
	if [ "$INIT" = openrc ]; then
		write_openrc_service
	else
		write_systemd_unit
	fi
	write_killall
	write_uninstall
	start_service
	info "done: ${CMD} installed; uninstall with ${UNINSTALL}"
}

main "$@"
