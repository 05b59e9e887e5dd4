// Package manifests holds the packaged components Outpost deploys, as templates. The deploy
// controller renders them into the server's manifests dir at every start.
package manifests

import "embed"

// FS holds every *.yaml here.
//
//go:embed *.yaml
var FS embed.FS
