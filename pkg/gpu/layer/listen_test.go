package layer

import (
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestMetricsAddrs(t *testing.T) {
	for _, tc := range []struct {
		ip   net.IP
		want []string
	}{
		{nil, []string{"127.0.0.1:9401"}},
		{net.ParseIP("127.0.0.1"), []string{"127.0.0.1:9401"}},
		{net.ParseIP("0.0.0.0"), []string{"127.0.0.1:9401"}}, // never every interface
		{net.ParseIP("192.0.2.7"), []string{"127.0.0.1:9401", "192.0.2.7:9401"}},
		{net.ParseIP("2001:db8::7"), []string{"127.0.0.1:9401", "[2001:db8::7]:9401"}},
	} {
		if got := metricsAddrs(tc.ip, 9401); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.ip, got, tc.want)
		}
	}
}

func TestListenMetricsPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	_, err = listenMetrics(nil, port)
	if want := fmt.Sprintf("GPU metrics port %d is in use: set --gpu-metrics-port", port); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// With a node IP the port opens there and on loopback, and on no other address.
func TestListenMetricsNodeIP(t *testing.T) {
	nodeIP := firstNonLoopbackIPv4(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	ls, err := listenMetrics(nodeIP, port)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range ls {
		got = append(got, l.Addr().String())
		defer l.Close()
	}
	if want := []string{fmt.Sprintf("127.0.0.1:%d", port), net.JoinHostPort(nodeIP.String(), fmt.Sprint(port))}; !reflect.DeepEqual(got, want) {
		t.Fatalf("listening on %v, want %v", got, want)
	}
	// Nothing took the wildcard address: it can still be bound on another loopback address.
	if other, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port)); err != nil {
		t.Errorf("port %d is held beyond the node IP and loopback: %v", port, err)
	} else {
		other.Close()
	}
}

func firstNonLoopbackIPv4(t *testing.T) net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP
		}
	}
	t.Skip("no non-loopback IPv4 address on this machine")
	return nil
}
