package tests

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/outpostk8s/outpost/tests/harness"
)

// run starts the binary, expecting it to refuse quickly.
func run(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), exitCode(err)
}

// assertRefused checks for exactly one line on the terminal naming the cause, a non-zero
// exit, and nothing written to the data dir but the payload the outer binary unpacks first.
func assertRefused(t *testing.T, out string, code, wantCode int, dataDir string, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, want %d; output %q", code, wantCode, out)
	}
	if strings.Count(out, "\n") != 0 {
		t.Errorf("want one line, got:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output %q lacks %q", out, w)
		}
	}
	if dataDir != "" {
		if state := harness.StateIn(dataDir); len(state) > 0 {
			t.Errorf("a refused start wrote %v in %s", state, dataDir)
		}
	}
}

func TestBadInput(t *testing.T) {
	bin := harness.Bin(t)
	root := t.TempDir()
	data := filepath.Join(root, "data")
	base := []string{"server", "--data-dir", data, "--runtime-dir", filepath.Join(root, "run"),
		"--write-kubeconfig", filepath.Join(root, "kc.yaml")}
	harness.Seed(t, bin, data) // what the outer binary would unpack there first, in 2 s

	t.Run("NotRoot", func(t *testing.T) {
		cmd := exec.Command(bin, base...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, code := run(t, cmd)
		assertRefused(t, out, code, 1, data, "must run as root", "sudo")
	})
	t.Run("UnknownFlag", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, append(base, "--no-such-flag")...))
		assertRefused(t, out, code, 2, data, "unknown flag --no-such-flag", "--help")
	})
	t.Run("MalformedConfig", func(t *testing.T) {
		cfg := filepath.Join(root, "bad.yaml")
		os.WriteFile(cfg, []byte("node-name: [unclosed\n"), 0o600)
		out, code := run(t, exec.Command(bin, append(base, "--config", cfg)...))
		assertRefused(t, out, code, 1, data, cfg, "not valid YAML")
	})
	t.Run("UnknownConfigKey", func(t *testing.T) {
		cfg := filepath.Join(root, "unknown.yaml")
		os.WriteFile(cfg, []byte("node-nmae: x\n"), 0o600)
		out, code := run(t, exec.Command(bin, append(base, "--config", cfg)...))
		assertRefused(t, out, code, 1, data, cfg, `unknown key "node-nmae"`)
	})
	t.Run("MissingConfigFile", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, append(base, "--config", filepath.Join(root, "nope.yaml"))...))
		assertRefused(t, out, code, 1, data, "nope.yaml", "no such file")
	})
	t.Run("BadValue", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, append(base, "--cluster-cidr", "10.42.0.0/33")...))
		assertRefused(t, out, code, 1, data, "--cluster-cidr", "10.42.0.0/16")
	})
	t.Run("MalformedToken", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, append(base, "--token", "not-a-token")...))
		assertRefused(t, out, code, 1, data, "--token", "malformed token")
	})
	t.Run("UnknownDisable", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, append(base, "--disable", "traefik")...))
		assertRefused(t, out, code, 1, data, `--disable "traefik"`, "coredns, local-storage, metrics-server, servicelb")
	})
	t.Run("RelativeStoragePath", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, append(base, "--default-local-storage-path", "storage")...))
		assertRefused(t, out, code, 1, data, "--default-local-storage-path", "absolute path")
	})
	t.Run("StoragePathNotADirectory", func(t *testing.T) {
		f := filepath.Join(root, "a-file")
		os.WriteFile(f, nil, 0o600)
		out, code := run(t, exec.Command(bin, append(base, "--default-local-storage-path", f)...))
		assertRefused(t, out, code, 1, data, f, "not a directory")
	})
	t.Run("RegistriesFile", func(t *testing.T) {
		for name, tc := range map[string]struct{ body, want string }{
			"does not parse": {"mirrors: [\n", "registries.yaml"},
			"unknown key":    {"mirrors:\n  docker.io:\n    endpoints: [\"https://m\"]\n", `unknown field "endpoints"`},
			"unreadable CA":  {"configs:\n  r.example:\n    tls: {ca_file: /nonexistent/ca.crt}\n", `configs."r.example".tls.ca_file`},
		} {
			f := filepath.Join(root, "registries.yaml")
			if err := os.WriteFile(f, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, code := run(t, exec.Command(bin, append(base, "--private-registry", f)...))
			t.Run(name, func(t *testing.T) { assertRefused(t, out, code, 1, data, f, tc.want) })
		}
		out, code := run(t, exec.Command(bin, append(base, "--private-registry", filepath.Join(root, "none.yaml"))...))
		assertRefused(t, out, code, 1, data, "none.yaml")
	})
	t.Run("UnwritableDataDir", func(t *testing.T) {
		ro := filepath.Join(root, "ro")
		os.MkdirAll(ro, 0o755)
		if err := syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, ""); err != nil {
			t.Skip("cannot mount a read-only tmpfs:", err)
		}
		defer syscall.Unmount(ro, syscall.MNT_DETACH)
		args := append([]string{}, base...)
		args[2] = filepath.Join(ro, "data")
		out, code := run(t, exec.Command(bin, args...))
		assertRefused(t, out, code, 1, "", "not writable", "--data-dir")
	})
	t.Run("PortInUse", func(t *testing.T) {
		l, err := net.Listen("tcp", "0.0.0.0:16443")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out, code := run(t, exec.Command(bin, append(base, "--https-listen-port", "16443")...))
		assertRefused(t, out, code, 1, data, "port 16443", "in use", "--https-listen-port")
	})
	t.Run("MissingHostTool", func(t *testing.T) {
		// A PATH without iptables: the host check names the tool and the package.
		cmd := exec.Command(bin, base...)
		cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
		out, code := run(t, cmd)
		assertRefused(t, out, code, 1, data, "iptables", "apt-get install")
	})
	t.Run("DefaultRuntimeMissing", func(t *testing.T) {
		cmd := exec.Command(bin, append(base, "--default-runtime", "nvidia")...)
		cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
		out, code := run(t, cmd)
		assertRefused(t, out, code, 1, data, "--default-runtime nvidia", "NVIDIA container toolkit")
	})
	t.Run("MIGStrategyHardwareCannotHonour", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, append(base, "--gpu-mock", "dgxa100", "--gpu-mig-strategy", "single")...))
		assertRefused(t, out, code, 1, data, "MIG strategy single", "MIG mode")
	})
	t.Run("MIGLayoutBad", func(t *testing.T) {
		// A profile the A100 40GB does not offer: named, with what it does offer.
		out, code := run(t, exec.Command(bin, append(base, "--gpu-mock", "dgxa100", "--gpu-mig-config", "all-2g.20gb")...))
		assertRefused(t, out, code, 1, data, "--gpu-mig-config", "does not offer MIG profile 2g.20gb", "1g.5gb")
		out, code = run(t, exec.Command(bin, append(base, "--gpu-mock", "dgxa100", "--gpu-mig-config", "half")...))
		assertRefused(t, out, code, 1, data, `--gpu-mig-config "half" is not a MIG layout`)
		f := filepath.Join(root, "layouts.yaml")
		os.WriteFile(f, []byte("version: v1\nmig-configs:\n  half:\n    - devices: all\n      device-filter: 0x20B010DE\n"), 0o600)
		out, code = run(t, exec.Command(bin, append(base, "--gpu-mock", "dgxa100", "--gpu-mig-config-file", f, "--gpu-mig-config", "half")...))
		assertRefused(t, out, code, 1, data, "--gpu-mig-config-file", "device-filter")
	})
	t.Run("UnknownGPUConfigKey", func(t *testing.T) {
		cfg := filepath.Join(root, "gpu.yaml")
		os.WriteFile(cfg, []byte("gpu:\n  mig-stratgy: mixed\n"), 0o600)
		out, code := run(t, exec.Command(bin, append(base, "--config", cfg)...))
		assertRefused(t, out, code, 1, data, `unknown key "gpu.mig-stratgy"`)
	})
	t.Run("CheckConfig", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, "check-config"))
		if code != 0 {
			t.Fatalf("check-config on this host: exit %d\n%s", code, out)
		}
		for _, want := range []string{"cgroup version", "oom_score_adj", "overlay filesystem", "tool iptables", "no NVIDIA driver: GPU support off", "ok    bundled binaries"} {
			if !strings.Contains(out, want) {
				t.Errorf("check-config lacks %q:\n%s", want, out)
			}
		}
		cmd := exec.Command(bin, "check-config")
		cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
		out, code = run(t, cmd)
		if code != 1 || !strings.Contains(out, "FAIL  tool iptables") {
			t.Errorf("check-config without iptables: exit %d\n%s", code, out)
		}
	})
	t.Run("Version", func(t *testing.T) {
		out, code := run(t, exec.Command(bin, "--version"))
		for _, want := range []string{"outpost v", "kubernetes v1.37", "containerd v2.4", "runc v1.5"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("--version lacks %q (exit %d):\n%s", want, code, out)
			}
		}
	})
}
