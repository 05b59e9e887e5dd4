// Package sysctl turns on the kernel settings pod networking needs, where the host allows it.
package sysctl

import (
	"os"
	"path/filepath"
	"strings"
)

// Settings pod networking needs: routing between pods and out of the node, and bridged
// traffic through iptables so Service replies on the same node are un-NATed.
var Settings = map[string]string{
	"net/ipv4/ip_forward":                 "1",
	"net/bridge/bridge-nf-call-iptables":  "1",
	"net/bridge/bridge-nf-call-ip6tables": "1",
}

// Ensure writes each setting under root/proc/sys that is present and differs; it returns a
// warning per setting it could not apply (a container host may forbid the write).
func Ensure(root string) []string {
	var warns []string
	for key, want := range Settings {
		p := filepath.Join(root, "proc/sys", key)
		cur, err := os.ReadFile(p)
		if err != nil {
			continue // module not loaded; hostcheck reports it
		}
		if strings.TrimSpace(string(cur)) == want {
			continue
		}
		if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
			warns = append(warns, "cannot set "+strings.ReplaceAll(key, "/", ".")+"="+want+": "+err.Error())
		}
	}
	return warns
}
