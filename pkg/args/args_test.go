package args

import (
	"reflect"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name     string
		defaults map[string]string
		user     []string
		want     []string
		wantErr  bool
	}{
		{"defaults sorted", map[string]string{"b": "2", "a": "1"}, nil, []string{"--a=1", "--b=2"}, false},
		{"user overrides", map[string]string{"v": "0", "a": "1"}, []string{"v=4"}, []string{"--a=1", "--v=4"}, false},
		{"leading dashes", map[string]string{"v": "0"}, []string{"--v=2"}, []string{"--v=2"}, false},
		{"repeatable kept in order", nil, []string{"x=1", "x=2"}, []string{"--x=1", "--x=2"}, false},
		{"bare switch", nil, []string{"profiling"}, []string{"--profiling=true"}, false},
		{"empty key", nil, []string{"=3"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Build(tt.defaults, tt.user)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWithMetricLabels(t *testing.T) {
	got, _ := Build(WithMetricLabels(map[string]string{"v": "0"}, nil), nil)
	if strings.Join(got, " ") != "--allow-metric-labels= --v=0" {
		t.Errorf("no user list: %q", got)
	}
	user := []string{"allow-metric-labels-manifest=/etc/m.yaml"}
	got, _ = Build(WithMetricLabels(map[string]string{"v": "0"}, user), user)
	if strings.Join(got, " ") != "--allow-metric-labels-manifest=/etc/m.yaml --v=0" {
		t.Errorf("the user's manifest: %q", got)
	}
}
