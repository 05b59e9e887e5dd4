// Package hostport reads ports on a node's addresses as an admin writes them ("8080",
// "9000/udp"). It links no Kubernetes code, so the config and the controllers share one reading.
package hostport

import (
	"fmt"
	"strconv"
	"strings"
)

// Port is one port and protocol; Protocol is TCP, UDP or SCTP, as Kubernetes spells them.
type Port struct {
	Number   int32
	Protocol string
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Number, p.Protocol) }

// Parse reads values such as "8080" (TCP), "9000/udp" or several of them comma-separated, as
// a config file's "8080,9000/udp" arrives in one value. Blank entries are skipped.
func Parse(vals []string) ([]Port, error) {
	var out []Port
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := parseOne(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func parseOne(s string) (Port, error) {
	num, proto, hasProto := strings.Cut(s, "/")
	p := Port{Protocol: "TCP"}
	if hasProto {
		p.Protocol = strings.ToUpper(proto)
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 || (p.Protocol != "TCP" && p.Protocol != "UDP" && p.Protocol != "SCTP") {
		return Port{}, fmt.Errorf("%q is not a port: write PORT or PORT/PROTOCOL, PORT 1-65535 and PROTOCOL tcp, udp or sctp, such as 8080 or 9000/udp", s)
	}
	p.Number = int32(n)
	return p, nil
}
