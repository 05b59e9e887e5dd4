package embedded

import "embed"

// The Makefile writes payload.tar.zst and its .sha256 into assets/arm64 before building.
//
//go:embed all:assets/arm64
var assets embed.FS

const assetsDir = "assets/arm64"
