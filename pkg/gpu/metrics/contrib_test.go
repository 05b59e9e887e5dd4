package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The Grafana dashboard in contrib/ charts every series the agent serves, and only those.
func TestContribDashboard(t *testing.T) {
	b, err := os.ReadFile("../../../contrib/monitoring/grafana-gpu-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	names := regexp.MustCompile(`\b(DCGM_FI_[A-Z_]+|outpost_gpu_[a-z_]+)\b`)
	charted := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			ms := names.FindAllString(tg.Expr, -1)
			if len(ms) == 0 {
				t.Errorf("panel %q: %q names no GPU series", p.Title, tg.Expr)
			}
			for _, m := range ms {
				if !slices.Contains(All, m) {
					t.Errorf("panel %q charts %s, which the agent does not serve", p.Title, m)
				}
				charted[m] = true
			}
		}
	}
	for _, m := range All {
		if !charted[m] {
			t.Errorf("%s is served but not charted", m)
		}
	}
	if d.UID == "" {
		t.Error("dashboard without a uid")
	}
}

// The scrape config targets the agent's default port and parses as YAML.
func TestContribScrapeConfig(t *testing.T) {
	b, err := os.ReadFile("../../../contrib/monitoring/prometheus-scrape.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			Scheme        string `json:"scheme"`
			Authorization struct {
				CredentialsFile string `json:"credentials_file"`
			} `json:"authorization"`
			RelabelConfigs []struct {
				TargetLabel string `json:"target_label"`
				Replacement string `json:"replacement"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("scrape config: %v", err)
	}
	if len(c.ScrapeConfigs) != 1 {
		t.Fatalf("%d scrape configs", len(c.ScrapeConfigs))
	}
	port := false
	for _, r := range c.ScrapeConfigs[0].RelabelConfigs {
		port = port || r.TargetLabel == "__address__" && strings.HasSuffix(r.Replacement, ":"+strconv.Itoa(DefaultPort))
	}
	if !port {
		t.Errorf("no relabelling of __address__ to port %d", DefaultPort)
	}
	// The port answers HTTPS callers the apiserver names: the job brings its ServiceAccount's token.
	if j := c.ScrapeConfigs[0]; j.Scheme != "https" || j.Authorization.CredentialsFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
		t.Errorf("scheme %q, credentials %q: want https and the ServiceAccount token", j.Scheme, j.Authorization.CredentialsFile)
	}
}

// The RBAC example lets its ServiceAccount get /metrics, which the endpoint asks the apiserver.
func TestContribRBAC(t *testing.T) {
	b, err := os.ReadFile("../../../contrib/monitoring/prometheus-rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	allowed, bound := false, false
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var o struct {
			Kind  string
			Rules []struct {
				NonResourceURLs []string `json:"nonResourceURLs"`
				Verbs           []string
			}
			RoleRef  struct{ Kind, Name string } `json:"roleRef"`
			Subjects []struct{ Kind, Name, Namespace string }
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("RBAC example: %v", err)
		}
		for _, r := range o.Rules {
			allowed = allowed || slices.Contains(r.NonResourceURLs, "/metrics") && slices.Contains(r.Verbs, "get")
		}
		for _, s := range o.Subjects {
			bound = bound || o.Kind == "ClusterRoleBinding" && o.RoleRef.Kind == "ClusterRole" && s.Kind == "ServiceAccount" && s.Name != ""
		}
	}
	if !allowed || !bound {
		t.Errorf("get on /metrics granted %v, bound to a ServiceAccount %v", allowed, bound)
	}
}
