package gctune

import "testing"

func fake(env map[string]string, percent *int) Host {
	return Host{
		Getenv:       func(k string) string { return env[k] },
		Setenv:       func(k, v string) error { env[k] = v; return nil },
		SetGCPercent: func(p int) int { old := *percent; *percent = p; return old },
	}
}

func TestDefaultWhenUnset(t *testing.T) {
	env, p := map[string]string{}, 100
	v, err := Apply(fake(env, &p))
	if err != nil || v != "50" || env["GOGC"] != "50" || p != 50 {
		t.Fatalf("got %q %v env %v percent %d", v, err, env, p)
	}
}

func TestUserValueKept(t *testing.T) {
	env, p := map[string]string{"GOGC": "200"}, 200
	v, err := Apply(fake(env, &p))
	if err != nil || v != "200" || env["GOGC"] != "200" || p != 200 {
		t.Fatalf("got %q %v env %v percent %d", v, err, env, p)
	}
}
