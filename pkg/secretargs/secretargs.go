// Package secretargs keeps secrets given on the command line (--token, --agent-token, a
// --datastore-endpoint with a password) out of /proc/PID/cmdline, which every local user can
// read. The outer binary hands their values to the inner program in an environment variable
// (readable by root alone) and passes a masked argv; the inner program restores them, and
// masks in place any it was given directly. What was visible before that, from the moment the
// user's shell started the process, cannot be taken back: README examples use files instead.
package secretargs

import (
	"encoding/json"
	"fmt"
	"strings"
)

// EnvVar carries the hidden values from the outer binary to the inner program.
const EnvVar = "OUTPOST_HIDDEN_ARGS"

// Mask replaces a hidden value in argv.
const Mask = "[hidden]"

// secret reports whether flag's value v is a secret.
func secret(flag, v string) bool {
	switch flag {
	case "token", "t", "agent-token", "new-token":
		return true
	case "datastore-endpoint":
		return hasPassword(v)
	}
	return false
}

// hasPassword: a DSN with user:password@ or a password= parameter (MySQL, PostgreSQL forms).
func hasPassword(dsn string) bool {
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if userinfo, _, ok := strings.Cut(rest, "@"); ok && strings.Contains(userinfo, ":") {
			return true
		}
	}
	if at := strings.LastIndex(dsn, "@"); at > 0 && strings.Contains(dsn[:at], ":") && !strings.Contains(dsn[:at], "://") {
		return true // MySQL's user:pass@tcp(host)/db
	}
	return strings.Contains(strings.ToLower(dsn), "password=")
}

// Hidden maps argv positions to the values masked there.
type Hidden map[int]string

// Find returns the positions of argv holding secret values, with those values. Flags come as
// -flag v, --flag v, -flag=v or --flag=v (urfave/cli's forms); for the = forms the position's
// whole argument is replaced by "--flag=" + Mask when masked. Nothing after "--" is a flag.
// Only Outpost's own commands that take secrets are looked at: kubectl's and ctr's -t is
// another flag.
func Find(argv []string) Hidden {
	h := Hidden{}
	if len(argv) < 2 || (argv[1] != "server" && argv[1] != "agent" && argv[1] != "token") {
		return h
	}
	for i := 2; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimLeft(a, "-")
		if n, v, ok := strings.Cut(name, "="); ok {
			if secret(n, v) {
				h[i] = v
			}
			continue
		}
		if i+1 < len(argv) && secret(name, argv[i+1]) {
			h[i+1] = argv[i+1]
			i++
		}
	}
	return h
}

// Masked is argv with the hidden values replaced by Mask.
func (h Hidden) Masked(argv []string) []string {
	out := append([]string(nil), argv...)
	for i := range h {
		out[i] = masked(out[i])
	}
	return out
}

func masked(arg string) string {
	if strings.HasPrefix(arg, "-") {
		if n, _, ok := strings.Cut(arg, "="); ok {
			return n + "=" + Mask
		}
	}
	return Mask
}

// Encode is the value of EnvVar for h.
func (h Hidden) Encode() string {
	b, _ := json.Marshal(h) // map[int]string always marshals
	return string(b)
}

// Restore puts the values encoded in env (EnvVar's value) back into argv, which must hold
// the masks Masked left at those positions.
func Restore(argv []string, env string) ([]string, error) {
	var h Hidden
	if err := json.Unmarshal([]byte(env), &h); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVar, err)
	}
	out := append([]string(nil), argv...)
	for i, v := range h {
		if i <= 0 || i >= len(out) || out[i] != masked(out[i]) {
			return nil, fmt.Errorf("%s names argument %d, which holds no hidden value", EnvVar, i)
		}
		if n, _, ok := strings.Cut(out[i], "="); ok && strings.HasPrefix(out[i], "-") {
			out[i] = n + "=" + v
		} else {
			out[i] = v
		}
	}
	return out, nil
}
