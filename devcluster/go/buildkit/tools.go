//go:build tools

// Package tools pins BuildKit's daemon and client so `go mod tidy` keeps their dependencies.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
