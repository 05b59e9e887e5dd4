// Package registries reads the k3s registries.yaml format (mirrors, their rewrites, and
// per-endpoint configs), checks it, and says what it means for an endpoint (its credentials and
// TLS) and for a rewriting mirror (its routes). It is a leaf, so config can read the file
// without linking the node; pkg/node/registries renders it for containerd.
package registries

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// DefaultFile is where a node looks when no --private-registry is given.
const DefaultFile = "/etc/outpost/registries.yaml"

// File is registries.yaml.
type File struct {
	Mirrors map[string]Mirror `json:"mirrors,omitempty"`
	Configs map[string]Config `json:"configs,omitempty"`
}

// Mirror lists the endpoints tried, in order, for one registry name ("*": every registry);
// the registry itself is tried last.
type Mirror struct {
	Endpoints []string          `json:"endpoint,omitempty"`
	Rewrites  map[string]string `json:"rewrite,omitempty"`
}

// Config is how to talk to one endpoint host (host[:port]).
type Config struct {
	Auth *Auth `json:"auth,omitempty"`
	TLS  *TLS  `json:"tls,omitempty"`
}

// Auth is a username and password, a base64 user:password, or an identity token.
type Auth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identity_token,omitempty"`
}

// TLS names a CA to verify the endpoint, a client certificate, or turns verification off.
type TLS struct {
	CAFile             string `json:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// Load reads and checks path. A missing file is no registries unless required (the user
// named it). Every error names the file and the key.
func Load(path string, required bool) (*File, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return &File{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registries file: %w", err)
	}
	var f File
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: %w: keys are mirrors.NAME.endpoint, and configs.HOST.auth (username, password, auth, identity_token) and .tls (ca_file, cert_file, key_file, insecure_skip_verify)", path, err)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Validate checks names, endpoints and that every named TLS file is there and usable.
func (f *File) Validate() error {
	for _, name := range slices.Sorted(maps.Keys(f.Mirrors)) {
		m := f.Mirrors[name]
		if name != "*" && !validHost(name) {
			return fmt.Errorf("mirrors.%q: not a registry host[:port] or *", name)
		}
		if _, err := m.rules(); err != nil {
			return fmt.Errorf("mirrors.%q.rewrite.%w", name, err)
		}
		if len(m.Rewrites) > 0 && len(m.Endpoints) == 0 {
			return fmt.Errorf("mirrors.%q.rewrite: rewrites apply to mirror endpoints, and there is none: add mirrors.%q.endpoint", name, name)
		}
		for i, e := range m.Endpoints {
			if u, err := EndpointURL(e); err == nil && len(m.Rewrites) > 0 && strings.Trim(u.Path, "/") != "" {
				return fmt.Errorf("mirrors.%q.endpoint[%d] %q: with rewrite, an endpoint must be a registry's root (scheme://host[:port]); rewrite into the path instead", name, i, e)
			}
		}
		for i, e := range m.Endpoints {
			if _, err := EndpointURL(e); err != nil {
				return fmt.Errorf("mirrors.%q.endpoint[%d]: %w", name, i, err)
			}
		}
	}
	for _, host := range slices.Sorted(maps.Keys(f.Configs)) {
		c := f.Configs[host]
		if !validHost(host) {
			return fmt.Errorf("configs.%q: not an endpoint host[:port]", host)
		}
		if c.Auth != nil && c.Auth.Username == "" && c.Auth.Auth == "" && c.Auth.IdentityToken == "" {
			return fmt.Errorf("configs.%q.auth: give username and password, auth or identity_token", host)
		}
		if t := c.TLS; t != nil {
			if t.CAFile != "" {
				pem, err := os.ReadFile(t.CAFile)
				if err != nil {
					return fmt.Errorf("configs.%q.tls.ca_file: %w", host, err)
				}
				if !x509.NewCertPool().AppendCertsFromPEM(pem) {
					return fmt.Errorf("configs.%q.tls.ca_file %s: no PEM certificate in it", host, t.CAFile)
				}
			}
			if (t.CertFile == "") != (t.KeyFile == "") {
				return fmt.Errorf("configs.%q.tls: cert_file and key_file go together", host)
			}
			if t.CertFile != "" {
				if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
					return fmt.Errorf("configs.%q.tls.cert_file/key_file: %w", host, err)
				}
			}
		}
	}
	return nil
}

func validHost(h string) bool {
	if h == "" || strings.ContainsAny(h, "/ \t") {
		return false
	}
	u, err := url.Parse("https://" + h)
	return err == nil && u.Host == h && u.Hostname() != ""
}

// EndpointURL parses an endpoint: http(s)://host[:port][/path]; a bare host means https.
func EndpointURL(e string) (*url.URL, error) {
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q is not http(s)://host[:port][/path]", e)
	}
	return u, nil
}

// ConfigFor is the config of an endpoint host ("docker.io" also stands for
// registry-1.docker.io).
func (f *File) ConfigFor(host string) Config {
	c, ok := f.Configs[host]
	if !ok && host == "registry-1.docker.io" {
		c = f.Configs["docker.io"]
	}
	return c
}

// Credentials are the auth entries by the host containerd contacts ("docker.io" also
// stands for registry-1.docker.io, the host Docker Hub pulls go to).
func (f *File) Credentials() map[string]Auth {
	out := map[string]Auth{}
	for host, c := range f.Configs {
		if c.Auth == nil {
			continue
		}
		out[host] = *c.Auth
		if host == "docker.io" {
			if _, ok := f.Configs["registry-1.docker.io"]; !ok {
				out["registry-1.docker.io"] = *c.Auth
			}
		}
	}
	return out
}

// Rule rewrites a repository name: the first rule whose pattern matches applies.
type Rule struct {
	Pattern *regexp.Regexp
	Replace string
}

// rules are the mirror's rewrites in pattern order (the file's map has none; sorted, the
// result does not change from one start to the next).
func (m Mirror) rules() ([]Rule, error) {
	var out []Rule
	for _, pat := range slices.Sorted(maps.Keys(m.Rewrites)) {
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", pat, err)
		}
		out = append(out, Rule{Pattern: re, Replace: m.Rewrites[pat]})
	}
	return out, nil
}

// Rewrite applies the first matching rule to a repository name; no match keeps it.
func Rewrite(rules []Rule, repo string) string {
	for _, r := range rules {
		if r.Pattern.MatchString(repo) {
			return r.Pattern.ReplaceAllString(repo, r.Replace)
		}
	}
	return repo
}

// Route is one mirror endpoint whose repository names are rewritten. containerd cannot
// rewrite (k3s patches its fork for it), so the node's proxy does it: containerd asks the
// proxy, the proxy asks the endpoint under the new name. As in k3s, the registry's own
// (default) endpoint, tried last, gets the name unchanged.
type Route struct {
	Registry string
	Endpoint *url.URL
	Rules    []Rule
}

// RewriteRoutes lists every endpoint of every mirror with rewrites, sorted by registry name
// and then in the file's order (pkg/node/registries numbers the proxy's routes so).
func (f *File) RewriteRoutes() []Route {
	var out []Route
	for _, name := range slices.Sorted(maps.Keys(f.Mirrors)) {
		m := f.Mirrors[name]
		if len(m.Rewrites) == 0 {
			continue
		}
		rules, _ := m.rules() // checked by Validate
		for _, e := range m.Endpoints {
			u, _ := EndpointURL(e)
			out = append(out, Route{Registry: name, Endpoint: u, Rules: rules})
		}
	}
	return out
}
