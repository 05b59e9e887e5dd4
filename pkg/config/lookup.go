package config

import (
	"github.com/outpostk8s/outpost/pkg/spec/configfile"
)

// Lookup reads the given keys from config.yaml and its drop-ins (later files win), for the
// tool commands that take no flags of their own (`outpost ctr`, `outpost kubectl`). Keys of
// server and agent are valid there; the result holds only the asked ones that are set.
func Lookup(path string, explicit bool, keys ...string) (map[string]string, error) {
	files, err := configfile.Files(path, explicit)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	m := lookup{want: want, got: map[string]string{}}
	if err := configfile.Apply(files, FileKeys(), m); err != nil {
		return nil, err
	}
	return m.got, nil
}

type lookup struct {
	want map[string]bool
	got  map[string]string
}

func (l lookup) IsSet(name string) bool { return !l.want[name] }
func (l lookup) Set(name, value string) error {
	l.got[name] = value
	return nil
}
