package config

import (
	"github.com/urfave/cli/v2"
)

// Help headings of server and agent flags, k3s-style. urfave prints them sorted by name.
const (
	catClient     = "Client"
	catCluster    = "Cluster"
	catComponents = "Components"
	catData       = "Data"
	catDatastore  = "Datastore"
	catGPU        = "GPU"
	catListener   = "Listener"
	catLogging    = "Logging"
	catNetworking = "Networking"
	catNode       = "Node"
	catSecurity   = "Security"
)

// CommandLine is a command's flags, each bound to the one field of its options that it fills:
// a flag's name is spelled once, in its definition. The flags write into the options as they
// are parsed, so build one CommandLine per parse.
type CommandLine[O any] struct {
	Flags []cli.Flag
	opts  *O
	b     *binder
}

func newCommandLine[O any](opts *O, b *binder, flags []cli.Flag) *CommandLine[O] {
	return &CommandLine[O]{Flags: flags, opts: opts, b: b}
}

// Options are what the parsed command line, with the config file merged in, filled.
func (l *CommandLine[O]) Options(c *cli.Context) O {
	for _, fill := range l.b.after {
		fill(c)
	}
	return *l.opts
}

// ConfigFile is the config file the command line names, and whether the user named it (a
// missing default file is no error).
func (l *CommandLine[O]) ConfigFile(c *cli.Context) (path string, explicit bool) {
	return *l.b.config.Destination, c.IsSet(l.b.config.Name)
}

// binder collects, while a flag list is built, what urfave's Destination cannot do alone.
type binder struct {
	config *cli.StringFlag
	// after fills the fields that need the parsed command line, once it is parsed.
	after []func(*cli.Context)
	// givens are the fields that say whether a flag was set; the binding test skips them.
	givens []*bool
}

// strings binds a slice flag to its field: urfave keeps slices in its own type, so the
// values are copied over once parsed.
func (b *binder) strings(field *[]string) *cli.StringSlice {
	s := &cli.StringSlice{}
	b.after = append(b.after, func(*cli.Context) { *field = s.Value() })
	return s
}

// given also fills field with whether the user set the flag (command line, env or file).
func (b *binder) given(field *bool, f cli.Flag) cli.Flag {
	b.givens = append(b.givens, field)
	b.after = append(b.after, func(c *cli.Context) { *field = c.IsSet(f.Names()[0]) })
	return f
}

// KnownFlags lists the names (and aliases) of a command's flags.
func KnownFlags(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.Names() {
			m[n] = true
		}
	}
	return m
}

// FileKeys are the keys a shared config file may hold: the flags of server and agent, which
// read the same file.
func FileKeys() map[string]bool {
	known := KnownFlags(ServerCommandLine().Flags)
	for k := range KnownFlags(AgentCommandLine().Flags) {
		known[k] = true
	}
	return known
}
