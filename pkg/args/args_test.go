package args

import (
	"reflect"
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
