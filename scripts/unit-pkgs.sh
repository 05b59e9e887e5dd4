#!/bin/sh
# Lists the unit-test packages that do not link the Kubernetes tree ("light": cheap to build
# with -race) or that do ("heavy": racing them would rebuild k8s.io/kubernetes instrumented,
# minutes of CI for code that is not ours).
set -eu
want=${1:?usage: unit-pkgs.sh light|heavy}
go list -f '{{.ImportPath}} {{len .TestGoFiles}}{{len .XTestGoFiles}}{{range .Deps}} {{.}}{{end}}' ./cmd/... ./pkg/... ./manifests/... ./scripts/... |
	awk -v want="$want" '{
		heavy = 0
		for (i = 3; i <= NF; i++) if (index($i, "k8s.io/kubernetes/") == 1) { heavy = 1; break }
		# A light package without tests has nothing to race: building its dependencies
		# instrumented (the apiserver library, for metrics-server) would be minutes for nothing.
		if (want == "light" && heavy == 0 && $2 == "00") next
		if ((want == "heavy") == (heavy == 1)) print $1
	}'
