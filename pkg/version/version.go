// Package version holds the versions stamped into the binary by the Makefile's -ldflags.
package version

import "fmt"

// Set by -ldflags -X at build time; the defaults mark a build made without the Makefile.
var (
	Outpost    = "v0.0.0-dev"
	GitCommit  = "unknown"
	Kubernetes = "unknown"
	Containerd = "unknown"
	Runc       = "unknown"
	CNIPlugins = "unknown"
	CoreDNS    = "unknown"
)

// String is what `outpost --version` prints: one component per line.
func String() string {
	return fmt.Sprintf("outpost %s (%s)\nkubernetes %s\ncontainerd %s\nrunc %s\ncni-plugins %s\ncoredns %s",
		Outpost, GitCommit, Kubernetes, Containerd, Runc, CNIPlugins, CoreDNS)
}

// Images Outpost builds and embeds; the Makefile sets both from versions.mk so the archives
// and the manifests name the same images.
var (
	PauseImage   = "docker.io/outpostk8s/pause:3.10-outpost"
	CoreDNSImage = "docker.io/outpostk8s/coredns:v1.15.0-outpost"
	// LocalPathImage holds local-path-provisioner and its helper (manifests/local-storage.yaml).
	LocalPathImage = "docker.io/outpostk8s/local-path-provisioner:v0.0.30-outpost"
)
