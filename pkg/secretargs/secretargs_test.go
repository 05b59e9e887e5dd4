package secretargs

import (
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestFindMaskRestore(t *testing.T) {
	argv := []string{"outpost", "server", "--token", "abcdef.0123456789abcdef", "--agent-token=ghijkl.0123456789abcdef",
		"-t", "x", "--datastore-endpoint", "postgres://u:pw@db:5432/o", "--node-name", "n1",
		"--datastore-endpoint=postgres://db:5432/o?sslmode=disable", "--", "--token", "after-dashes"}
	h := Find(argv)
	want := Hidden{3: "abcdef.0123456789abcdef", 4: "ghijkl.0123456789abcdef", 6: "x", 8: "postgres://u:pw@db:5432/o"}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("Find = %v, want %v", h, want)
	}
	m := h.Masked(argv)
	joined := strings.Join(m, " ")
	for _, v := range want {
		if strings.Contains(joined, v) {
			t.Errorf("masked argv still holds %q: %s", v, joined)
		}
	}
	if m[4] != "--agent-token="+Mask || m[3] != Mask || argv[3] != "abcdef.0123456789abcdef" {
		t.Errorf("masked %q (argv changed: %v)", m, argv[3])
	}
	back, err := Restore(m, h.Encode())
	if err != nil || !reflect.DeepEqual(back, argv) {
		t.Fatalf("Restore = %q, %v", back, err)
	}
	if _, err := Restore(argv, h.Encode()); err == nil {
		t.Error("restored into positions that hold no mask")
	}
	if _, err := Restore(m, "{nope"); err == nil {
		t.Error("restored from garbage")
	}
	if h := Find([]string{"outpost", "kubectl", "exec", "-t", "pod"}); len(h) != 0 {
		t.Errorf("kubectl's -t taken for a token: %v", h)
	}
}

func TestHasPassword(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://u:pw@db:5432/o":              true,
		"postgres://u@db:5432/o":                 false,
		"mysql://u:pw@tcp(db:3306)/o":            true,
		"u:pw@tcp(db:3306)/o":                    true,
		"host=db user=u password=pw dbname=o":    true,
		"sqlite:///var/lib/outpost/state.db":     false,
		"https://10.0.0.1:2379,https://10.0.0.2": false,
	} {
		if hasPassword(dsn) != want {
			t.Errorf("hasPassword(%q) = %v", dsn, !want)
		}
	}
}

// Scrub overwrites the values in the process's own command line: a child process scrubs its
// argv and prints its /proc/self/cmdline.
func TestScrubOwnCmdline(t *testing.T) {
	if os.Getenv("SECRETARGS_CHILD") == "1" {
		args := Own(os.Args)
		h := Find(args[2:]) // the test binary and its -test.run come first; look from "outpost" on
		shifted := Hidden{}
		for i, v := range h {
			shifted[i+2] = v
		}
		Scrub(os.Args, shifted)
		b, _ := os.ReadFile("/proc/self/cmdline")
		os.Stdout.Write(b)
		if args[5] != "abcdef.0123456789abcdef" {
			os.Stdout.WriteString("\x00COPY-CHANGED")
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0])
	// The test binary's flags end at "outpost": the rest are arguments, as a real argv's.
	cmd.Args = []string{os.Args[0], "-test.run=^TestScrubOwnCmdline$", "outpost", "agent", "--token", "abcdef.0123456789abcdef", "--agent-token=ghijkl.0123456789abcdef"}
	cmd.Env = append(os.Environ(), "SECRETARGS_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	s := string(out)
	if strings.Contains(s, "0123456789abcdef") || strings.Contains(s, "COPY-CHANGED") {
		t.Errorf("cmdline after Scrub: %q", s)
	}
	if !strings.Contains(s, "--agent-token=*****") || !strings.Contains(s, "--token\x00*****") {
		t.Errorf("cmdline after Scrub: %q", s)
	}
}
