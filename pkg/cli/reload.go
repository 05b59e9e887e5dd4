package cli

import (
	"time"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/transport"

	"github.com/outpostk8s/outpost/pkg/pki"
)

// tuneReloads shortens how often the in-process clients and servers re-read certificate
// files when certificates live for minutes (the test-only --leaf-cert-lifetime): upstream
// looks every 1-5 minutes, longer than such a certificate's renewal margin. Both are
// upstream's own knobs for its tests, process-wide: the command sets them once, before any
// component starts.
func tuneReloads(lifetime time.Duration) {
	if lifetime <= 0 || lifetime >= 24*time.Hour {
		return
	}
	every := pki.CheckInterval(lifetime)
	transport.CertCallbackRefreshDuration = every
	dynamiccertificates.FileRefreshDuration = every
}
