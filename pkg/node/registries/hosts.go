// Package registries renders registries.yaml (read and checked by pkg/spec/registries) for
// containerd: mirrors and TLS as hosts.toml files under its config_path; credentials go to the
// CRI images plugin's registry.configs auth (hosts.toml has no auth, and containerd asks for
// credentials by the host it is talking to, which is what configs keys name).
package registries

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	regspec "github.com/outpostk8s/outpost/pkg/spec/registries"
)

// Dir is the hosts.toml directory containerd looks in for a registry: host_port_ for a
// name with a port (containerd's own spelling), _default for *.
func Dir(name string) string {
	if name == "*" {
		return "_default"
	}
	if h, p, err := net.SplitHostPort(name); err == nil {
		return h + "_" + p + "_"
	}
	return name
}

// upstream is the registry's own endpoint, tried after the mirrors.
func upstream(name string) string {
	if name == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + name
}

// HostsFiles renders one hosts.toml per registry that has mirrors or a TLS config, keyed by
// directory name. The endpoints of a mirror with rewrites are reached through proxy, which
// must be given when f.RewriteRoutes has any; route numbers follow RewriteRoutes' order.
func HostsFiles(f *regspec.File, proxy *Proxy) map[string][]byte {
	out := map[string][]byte{}
	route := 0
	for _, name := range slices.Sorted(maps.Keys(f.Mirrors)) {
		var b bytes.Buffer
		if name != "*" {
			fmt.Fprintf(&b, "server = %q\n", upstream(name))
			tlsLines(f, &b, hostOf(upstream(name)), "")
		}
		rewrites := len(f.Mirrors[name].Rewrites) > 0
		for _, e := range f.Mirrors[name].Endpoints {
			if rewrites && proxy != nil {
				// The proxy speaks to the endpoint (TLS, auth) with the rewritten name.
				fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n", proxy.RoutePath(route))
				fmt.Fprintf(&b, "  [host.%q.header]\n    %s = [%q]\n", proxy.RoutePath(route), proxy.Header, proxy.Token)
				route++
				continue
			}
			u, _ := regspec.EndpointURL(e)
			override := strings.Trim(u.Path, "/") != ""
			hu := *u
			if override {
				hu.Path = strings.TrimRight(u.Path, "/") + "/v2"
			}
			fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", hu.String())
			if override {
				b.WriteString("  override_path = true\n")
			}
			tlsLines(f, &b, u.Host, "  ")
		}
		out[Dir(name)] = b.Bytes()
	}
	// A registry pulled by its own name, with a CA or client certificate of its own.
	for _, host := range slices.Sorted(maps.Keys(f.Configs)) {
		if f.Configs[host].TLS == nil {
			continue
		}
		if _, ok := out[Dir(host)]; ok {
			continue
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "server = %q\n", upstream(host))
		tlsLines(f, &b, host, "")
		out[Dir(host)] = b.Bytes()
	}
	return out
}

func hostOf(u string) string {
	p, _ := url.Parse(u)
	return p.Host
}

func tlsLines(f *regspec.File, b *bytes.Buffer, host, indent string) {
	t := f.ConfigFor(host).TLS
	if t == nil {
		return
	}
	if t.CAFile != "" {
		fmt.Fprintf(b, "%sca = %q\n", indent, t.CAFile)
	}
	if t.CertFile != "" {
		fmt.Fprintf(b, "%sclient = [[%q, %q]]\n", indent, t.CertFile, t.KeyFile)
	}
	if t.InsecureSkipVerify {
		fmt.Fprintf(b, "%sskip_verify = true\n", indent)
	}
}

// WriteHostsDir replaces dir with the hosts files: built beside it and swapped in, so that
// containerd never reads a half-written set, and a registry removed from the file goes.
func WriteHostsDir(dir string, files map[string][]byte) error {
	tmp := dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("registry hosts dir: %w", err)
	}
	for d, body := range files {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o700); err != nil {
			return fmt.Errorf("registry hosts dir: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, d, "hosts.toml"), body, 0o600); err != nil {
			return fmt.Errorf("registry hosts dir: %w", err)
		}
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("registry hosts dir: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("registry hosts dir: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("registry hosts dir: %w", err)
	}
	return nil
}

// Proxy is where containerd reaches the rewriting proxy: URL (http://127.0.0.1:PORT), and a
// header it must send, so that no other local process can pull with the node's credentials.
type Proxy struct {
	URL    string
	Header string
	Token  string
}

// RoutePath is the base containerd uses for route i (with override_path: it appends
// NAME/manifests/REF).
func (p *Proxy) RoutePath(i int) string { return fmt.Sprintf("%s/r/%d/v2", p.URL, i) }
