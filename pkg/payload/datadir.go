package payload

import (
	"path/filepath"
	"strings"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/spec/configfile"
)

// IsTool says whether name (a command, or the base name the program was called by) is a
// wrapped tool, kubectl, ctr or crictl, that takes every argument as its own.
func IsTool(name string) bool { return name == "kubectl" || name == "ctr" || name == "crictl" }

// DataDir is the data dir the command in argv will use, as the outer binary needs it before
// the inner one runs: --data-dir (or -d), else data-dir from the config file and its drop-ins
// (--config, -c or OUTPOST_CONFIG_FILE), else the default; for kubectl, ctr and crictl,
// OUTPOST_DATA_DIR first, which they read too. A config file that cannot be read
// is the inner binary's to report; here it only means the default.
func DataDir(argv []string, getenv func(string) string) string {
	cfg, cfgSet := getenv("OUTPOST_CONFIG_FILE"), false
	if cfg != "" {
		cfgSet = true
	}
	dir := ""
	tool := len(argv) > 0 && IsTool(filepath.Base(argv[0])) || len(argv) > 1 && IsTool(argv[1])
	if !tool && len(argv) > 1 {
		args := argv[1:]
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a == "--" {
				break
			}
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !strings.HasPrefix(a, "-") || !isFlag(name) {
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					break
				}
				i++
				val = args[i]
			}
			switch name {
			case "data-dir", "d":
				dir = val
			case "config", "c":
				cfg, cfgSet = val, true
			}
		}
	}
	if dir == "" && tool {
		dir = getenv("OUTPOST_DATA_DIR")
	}
	if dir == "" {
		if cfg == "" {
			cfg = datadir.DefaultConfigFile
		}
		dir = fromConfig(cfg, cfgSet)
	}
	if dir == "" {
		dir = datadir.DefaultDataDir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir
}

func isFlag(name string) bool {
	switch name {
	case "data-dir", "d", "config", "c":
		return true
	}
	return false
}

func fromConfig(path string, explicit bool) string {
	files, err := configfile.Files(path, explicit)
	if err != nil {
		return ""
	}
	got := dataDirSetter{}
	if err := configfile.Apply(files, nil, got); err != nil {
		return ""
	}
	return got["data-dir"]
}

type dataDirSetter map[string]string

func (dataDirSetter) IsSet(name string) bool { return name != "data-dir" }
func (s dataDirSetter) Set(name, value string) error {
	s[name] = value
	return nil
}
