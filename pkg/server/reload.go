package server

import (
	"os"
	"time"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/transport"

	"github.com/outpostk8s/outpost/pkg/pki"
)

// tuneReloads shortens how often the in-process clients and servers re-read certificate
// files when certificates live for minutes (the test-only --leaf-cert-lifetime): upstream
// looks every 1-5 minutes, longer than such a certificate's renewal margin. Both are
// upstream's own knobs for its tests; they are set once, before any component starts.
func tuneReloads(lifetime time.Duration) {
	if lifetime <= 0 || lifetime >= 24*time.Hour {
		return
	}
	every := pki.CheckInterval(lifetime)
	transport.CertCallbackRefreshDuration = every
	dynamiccertificates.FileRefreshDuration = every
}

// certLifetime is the lifetime of the certificate in file, 0 when unreadable.
func certLifetime(file string) time.Duration {
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	c, err := pki.ParseCert(raw)
	if err != nil {
		return 0
	}
	return c.NotAfter.Sub(c.NotBefore)
}
