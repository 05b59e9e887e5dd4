package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/spec/configfile"
)

// line is a fresh command line of either command, seen without its options' type.
type line struct {
	flags   []cli.Flag
	opts    func(*cli.Context) any // the filled options
	fields  func() any             // a pointer to the options the flags write into
	b       *binder
	cmdName string
}

func lines() []func() line {
	return []func() line{
		func() line {
			l := ServerCommandLine()
			return line{l.Flags, func(c *cli.Context) any { return l.Options(c) }, func() any { return l.opts }, l.b, "server"}
		},
		func() line {
			l := AgentCommandLine()
			return line{l.Flags, func(c *cli.Context) any { return l.Options(c) }, func() any { return l.opts }, l.b, "agent"}
		},
	}
}

// destination is where a flag writes its value: nil for none.
func destination(f cli.Flag) any {
	switch f := f.(type) {
	case *cli.StringFlag:
		return f.Destination
	case *cli.BoolFlag:
		return f.Destination
	case *cli.IntFlag:
		return f.Destination
	case *cli.Int64Flag:
		return f.Destination
	case *cli.DurationFlag:
		return f.Destination
	case *cli.StringSliceFlag:
		return f.Destination
	}
	return nil
}

// Each flag is defined once (no name or alias twice in a command), has a help heading, and
// writes into a destination of its own.
func TestFlagsDefinedOnceAndBound(t *testing.T) {
	for _, mk := range lines() {
		l := mk()
		names := map[string]bool{}
		dests := map[any]string{}
		for _, f := range l.flags {
			for _, n := range f.Names() {
				if names[n] {
					t.Errorf("%s: --%s is defined twice", l.cmdName, n)
				}
				names[n] = true
			}
			name := f.Names()[0]
			if cf, ok := f.(cli.CategorizableFlag); !ok || cf.GetCategory() == "" {
				t.Errorf("%s: --%s has no help category", l.cmdName, name)
			}
			d := destination(f)
			if d == nil || reflect.ValueOf(d).IsNil() {
				t.Errorf("%s: --%s is bound to no field", l.cmdName, name)
				continue
			}
			if other, dup := dests[d]; dup {
				t.Errorf("%s: --%s and --%s fill the same field", l.cmdName, name, other)
			}
			dests[d] = name
		}
	}
}

// Each flag fills exactly one field of its options, given on the command line or as a
// config-file key: the binding is the only place its name is spelled.
func TestEachFlagFillsOneField(t *testing.T) {
	for _, mk := range lines() {
		base := parse(t, mk(), nil, "")
		for _, f := range mk().flags {
			name := f.Names()[0]
			val := probe(t, f)
			for how, args := range map[string][]string{"flag": {"--" + name + "=" + val}, "file": nil} {
				file := ""
				if how == "file" {
					file = name + ": " + strconv.Quote(val) + "\n"
				}
				l := mk()
				got := parse(t, l, args, file)
				skip := givenPaths(l)
				var changed []string
				for path, v := range got {
					if !skip[path] && !reflect.DeepEqual(v, base[path]) {
						changed = append(changed, path)
					}
				}
				if len(changed) != 1 {
					t.Errorf("%s --%s by %s changed %v, want one field", l.cmdName, name, how, changed)
				}
			}
		}
	}
}

// probe is a value for f unlike its default.
func probe(t *testing.T, f cli.Flag) string {
	switch f := f.(type) {
	case *cli.StringFlag:
		return "probe-" + f.Name
	case *cli.BoolFlag:
		return strconv.FormatBool(!f.Value)
	case *cli.IntFlag:
		return strconv.Itoa(f.Value + 7)
	case *cli.Int64Flag:
		return strconv.FormatInt(f.Value+7, 10)
	case *cli.DurationFlag:
		return (f.Value + 7*time.Second).String()
	case *cli.StringSliceFlag:
		return "probe-" + f.Name
	}
	t.Fatalf("no probe for %T", f)
	return ""
}

// parse runs l as its command does (config file under the command line) and returns every
// field of the options it filled, by path.
func parse(t *testing.T, l line, args []string, file string) map[string]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	app := &cli.App{Flags: l.flags, ExitErrHandler: func(*cli.Context, error) {},
		Before: func(c *cli.Context) error {
			return configfile.Apply([]string{path}, KnownFlags(l.flags), c)
		},
		Action: func(c *cli.Context) error {
			got = map[string]any{}
			walk(reflect.ValueOf(l.opts(c)), "", func(p string, v reflect.Value) { got[p] = v.Interface() })
			return nil
		}}
	if err := app.Run(append([]string{"outpost"}, args...)); err != nil {
		t.Fatalf("%s %v: %v", l.cmdName, args, err)
	}
	return got
}

// givenPaths are the fields that record whether a flag was set, beside its value's field.
func givenPaths(l line) map[string]bool {
	out := map[string]bool{}
	walk(reflect.ValueOf(l.fields()).Elem(), "", func(p string, v reflect.Value) {
		for _, g := range l.b.givens {
			if v.CanAddr() && v.Addr().Interface() == any(g) {
				out[p] = true
			}
		}
	})
	return out
}

// walk visits the leaf fields of a struct, by dotted path.
func walk(v reflect.Value, prefix string, visit func(string, reflect.Value)) {
	for i := range v.NumField() {
		f, p := v.Field(i), prefix+v.Type().Field(i).Name
		if f.Kind() == reflect.Struct {
			walk(f, p+".", visit)
			continue
		}
		visit(p, f)
	}
}

// Values reach the fields from env vars and config files too, slices and durations included,
// and the command line beats the file.
func TestBoundValuesFromEnvAndFile(t *testing.T) {
	t.Setenv("OUTPOST_TOKEN", "env-token")
	t.Setenv("OUTPOST_URL", "https://a:6443,https://b:6443")
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	body := "kine-compact-interval: 10m\ntls-san: [a.example, b.example]\ncluster-domain: file.local\n" +
		"kubelet-arg: max-pods=150\ngpu:\n  time-slicing-replicas: 4\n  health-quiet: 90s\ndebug: true\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := ServerCommandLine()
	var o ServerOptions
	run(t, srv.Flags, srv.ConfigFile, func(c *cli.Context) { o = srv.Options(c) },
		"--config", file, "--cluster-domain", "cli.local", "--kine-poll-interval", "3s", "--disable", "coredns", "--disable", "servicelb")
	// On a server OUTPOST_URL is a single value (--server, the server to join): not split.
	want := fmt.Sprint(10*time.Minute, 3*time.Second, []string{"a.example", "b.example"}, "cli.local", "env-token", 4, 90*time.Second,
		true, []string{"max-pods=150"}, []string{"coredns", "servicelb"}, file, false, "https://a:6443,https://b:6443")
	got := fmt.Sprint(o.KineCompactInterval, o.KinePollInterval, o.TLSSANs, o.ClusterDomain, o.Token, o.GPU.Replicas, o.GPU.HealthQuiet,
		o.Debug, o.KubeletArgs, o.Disable, o.ConfigFile, o.RegistryGiven, o.JoinServer)
	if got != want {
		t.Errorf("server options:\n got %s\nwant %s", got, want)
	}
	agentFile := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(agentFile, []byte("private-registry: /r.yaml\nkube-proxy-arg: [a=1, b=2]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := AgentCommandLine()
	var a AgentOptions
	run(t, agent.Flags, agent.ConfigFile, func(c *cli.Context) { a = agent.Options(c) }, "-c", agentFile, "--kube-proxy-arg", "c=3")
	if !slices.Equal(a.Servers, []string{"https://a:6443", "https://b:6443"}) || a.Token != "env-token" || !a.RegistryGiven ||
		a.PrivateRegistry != "/r.yaml" || !slices.Equal(a.KubeProxyArgs, []string{"c=3"}) {
		t.Errorf("agent options %+v", a)
	}
}

// run parses args as server and agent do, config file included.
func run(t *testing.T, flags []cli.Flag, file func(*cli.Context) (string, bool), done func(*cli.Context), args ...string) {
	t.Helper()
	app := &cli.App{Flags: flags, ExitErrHandler: func(*cli.Context, error) {},
		Before: func(c *cli.Context) error {
			files, err := configfile.Files(file(c))
			if err != nil {
				return err
			}
			return configfile.Apply(files, KnownFlags(flags), c)
		},
		Action: func(c *cli.Context) error { done(c); return nil }}
	if err := app.Run(append([]string{"outpost"}, args...)); err != nil {
		t.Fatal(err)
	}
}
