package config

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/outpostk8s/outpost/pkg/hostcheck"
)

// RealEnv reads the running machine.
func RealEnv() Env {
	return Env{Hostname: os.Hostname, DefaultIP: DefaultRouteIP, Host: hostcheck.Real(),
		Exists: func(p string) bool { _, err := os.Stat(p); return err == nil }}
}

// DefaultRouteIP is the first IPv4 address of the interface holding the default route, or of
// the first up, non-loopback interface when there is no default route (an air-gapped host).
func DefaultRouteIP() (net.IP, error) {
	if name := defaultRouteIface("/proc/net/route"); name != "" {
		if ip := ifaceIPv4(name); ip != nil {
			return ip, nil
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		if ip := ifaceIPv4(i.Name); ip != nil {
			return ip, nil
		}
	}
	return nil, fmt.Errorf("no interface with an IPv4 address is up")
}

func defaultRouteIface(routeFile string) string {
	f, err := os.Open(routeFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 2 && fields[1] == "00000000" && fields[0] != "Iface" {
			return fields[0]
		}
	}
	return ""
}

func ifaceIPv4(name string) net.IP {
	i, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := i.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.To4()
		}
	}
	return nil
}
