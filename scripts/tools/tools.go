//go:build tools

// Package tools pins the linter `make lint` builds, apart from the project's own modules.
package tools

import _ "honnef.co/go/tools/cmd/staticcheck"
