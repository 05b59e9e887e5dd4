package embedded

import "embed"

// The Makefile writes payload.tar.zst and its .sha256 into assets/amd64 before building.
//
//go:embed all:assets/amd64
var assets embed.FS

const assetsDir = "assets/amd64"
