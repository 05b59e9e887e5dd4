package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/hostport"
	"github.com/outpostk8s/outpost/pkg/spec/configfile"
)

// completeWith parses args and the config file as `outpost server` does, then completes.
func completeWith(t *testing.T, file string, args ...string) (*Server, error) {
	t.Helper()
	line := ServerCommandLine()
	var srv *Server
	var cerr error
	app := &cli.App{Flags: line.Flags, ExitErrHandler: func(*cli.Context, error) {},
		Before: func(c *cli.Context) error {
			files, err := configfile.Files(file, true)
			if err != nil {
				return err
			}
			return configfile.Apply(files, KnownFlags(line.Flags), c)
		},
		Action: func(c *cli.Context) error {
			srv, cerr = CompleteServer(line.Options(c), testEnv())
			return nil
		}}
	if err := app.Run(append([]string{"outpost"}, args...)); err != nil {
		t.Fatal(err)
	}
	return srv, cerr
}

func TestServiceLBReservedPorts(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(body string) string { // a file each: the cases are all written first
		n++
		f := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", n))
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	want := []hostport.Port{{Number: 8080, Protocol: "TCP"}, {Number: 9000, Protocol: "UDP"}, {Number: 7000, Protocol: "TCP"}}
	for name, tc := range map[string]struct {
		file string
		args []string
	}{
		"flags":            {write(""), []string{"--servicelb-reserved-ports", "8080,9000/udp", "--servicelb-reserved-ports", "7000"}},
		"file string":      {write(`servicelb-reserved-ports: "8080,9000/udp,7000"`), nil},
		"file list":        {write("servicelb-reserved-ports: [8080, 9000/udp, 7000/TCP]"), nil},
		"flags beat files": {write("servicelb-reserved-ports: [22]"), []string{"--servicelb-reserved-ports=8080,9000/UDP,7000"}},
	} {
		srv, err := completeWith(t, tc.file, tc.args...)
		if err != nil || !reflect.DeepEqual(srv.Control.ServiceLBReserved, want) {
			t.Errorf("%s: %+v %v; want %v", name, srv, err, want)
		}
	}
	srv, err := completeWith(t, write(""))
	if err != nil || len(srv.Control.ServiceLBReserved) != 0 {
		t.Errorf("default: %v %v; want none", srv.Control.ServiceLBReserved, err)
	}
	for _, bad := range []string{"80x", "70000", "0", "8080/icmp", "udp"} {
		_, err := completeWith(t, write(""), "--servicelb-reserved-ports", "22,"+bad)
		if err == nil || strings.Contains(err.Error(), "\n") ||
			!strings.HasPrefix(err.Error(), `--servicelb-reserved-ports "`+bad+`" is not a port`) ||
			!strings.Contains(err.Error(), "such as 8080 or 9000/udp") {
			t.Errorf("%q: %v; want one line naming the flag, the value and the form", bad, err)
		}
	}
}
