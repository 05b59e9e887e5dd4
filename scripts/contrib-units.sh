#!/bin/sh
# Writes the service files install.sh makes, with its default paths, into DIR/systemd and
# DIR/openrc: contrib/ keeps them for users who install by hand (tests/contrib_test.go checks
# that they match install.sh). Usage: contrib-units.sh DIR   (from the repository root)
set -eu
dir=$1
mkdir -p "$dir/systemd" "$dir/openrc"
# install.sh's functions without its last line (main "$@").
sed '$d' install.sh >"$dir/.install-functions.sh"
for role in server agent; do
	(
		# shellcheck source=/dev/null
		. "$dir/.install-functions.sh"
		# shellcheck disable=SC2317,SC2034 # install.sh's functions read these
		info() { :; }
		# shellcheck disable=SC2034
		CMD=$role BIN_DIR=/usr/local/bin SYSTEMD_DIR=$dir/systemd OPENRC_DIR=$dir/openrc
		SERVICE=outpost
		[ "$role" = agent ] && SERVICE=outpost-agent
		# shellcheck disable=SC2034
		UNIT=$dir/systemd/$SERVICE.service ENV_FILE=/etc/systemd/system/$SERVICE.service.env
		write_systemd_unit
		write_openrc_service
	)
done
rm -f "$dir/.install-functions.sh"
