// Package args builds an upstream component's command line from Outpost's defaults and the
// user's extra arguments, deterministically, so the same config always yields the same argv.
package args

import (
	"fmt"
	"sort"
	"strings"
)

// Build merges defaults with user values given as "key=value" (or "--key=value") and returns
// "--key=value" arguments sorted by key. A user value replaces the default of the same key; a
// key given several times by the user is kept several times, in the user's order, because
// some upstream flags are repeatable.
func Build(defaults map[string]string, user []string) ([]string, error) {
	userVals := map[string][]string{}
	for _, u := range user {
		kv := strings.TrimLeft(u, "-")
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			v = "true" // a bare flag name is a boolean switch
		}
		if k == "" {
			return nil, fmt.Errorf("argument %q has no flag name: use key=value", u)
		}
		userVals[k] = append(userVals[k], v)
	}
	keys := make([]string, 0, len(defaults)+len(userVals))
	for k := range defaults {
		if _, over := userVals[k]; !over {
			keys = append(keys, k)
		}
	}
	for k := range userVals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if vs, ok := userVals[k]; ok {
			for _, v := range vs {
				out = append(out, "--"+k+"="+v)
			}
			continue
		}
		out = append(out, "--"+k+"="+defaults[k])
	}
	return out, nil
}
