//go:build tools

// Package tools pins the weed command for `go build` in this wrapper module.
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
