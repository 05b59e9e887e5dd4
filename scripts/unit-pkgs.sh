#!/bin/sh
# Lists the unit-test packages that do not link the Kubernetes tree ("light": cheap to build
# with -race) or that do ("heavy": racing them would rebuild k8s.io/kubernetes instrumented,
# minutes of CI for code that is not ours).
set -eu
want=${1:?usage: unit-pkgs.sh light|heavy}
go list -f '{{.ImportPath}}{{range .Deps}} {{.}}{{end}}' ./cmd/... ./pkg/... ./manifests/... ./scripts/... |
	awk -v want="$want" '{
		heavy = 0
		for (i = 2; i <= NF; i++) if (index($i, "k8s.io/kubernetes/") == 1) { heavy = 1; break }
		if ((want == "heavy") == (heavy == 1)) print $1
	}'
