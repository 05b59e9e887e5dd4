// Package deploy is the deploy controller: it renders the embedded manifests into the server's
// manifests dir and applies every YAML file there with server-side apply, re-applying a file
// when it changes.
package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/outpostk8s/outpost/pkg/pki"
)

// Values fill the embedded templates.
type Values struct {
	ClusterDNS    string
	ClusterDomain string
	CoreDNSImage  string
	PauseImage    string
	// The in-process metrics-server: where the apiserver reaches it, and the CA its serving
	// certificate chains to.
	MetricsAddress     string
	MetricsAddressType string // IPv4 or IPv6, as EndpointSlices name them
	MetricsPort        int
	ServerCABase64     string
	// local-path-provisioner: its image (also its helper pods') and where volumes go.
	LocalPathImage string
	StoragePath    string
}

// WriteDefaults renders every embedded manifest into dir, except the disabled ones, whose files
// are removed. It returns the names it wrote.
func WriteDefaults(embedded fs.FS, dir string, v Values, disabled map[string]bool) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create manifests dir: %w", err)
	}
	names, err := fs.Glob(embedded, "*.yaml")
	if err != nil {
		return nil, err
	}
	var wrote []string
	for _, n := range names {
		target := filepath.Join(dir, n)
		if disabled[strings.TrimSuffix(n, ".yaml")] {
			if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
				return wrote, fmt.Errorf("remove disabled %s: %w", n, err)
			}
			continue
		}
		b, err := Render(embedded, n, v)
		if err != nil {
			return wrote, err
		}
		if err := pki.WriteFile(target, b, 0o600); err != nil {
			return wrote, err
		}
		wrote = append(wrote, n)
	}
	return wrote, nil
}

// Render fills one embedded template.
func Render(embedded fs.FS, name string, v Values) ([]byte, error) {
	raw, err := fs.ReadFile(embedded, name)
	if err != nil {
		return nil, fmt.Errorf("embedded manifest %s: %w", name, err)
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(raw))
	if err != nil {
		return nil, fmt.Errorf("embedded manifest %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("embedded manifest %s: %w", name, err)
	}
	return b.Bytes(), nil
}
