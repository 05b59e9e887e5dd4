package main

import (
	"fmt"
	"io"
	"net"
	"sort"
	"time"
)

// netsrv serves netbench: a connection's first byte picks the mode, 'T' to swallow
// everything (throughput) or 'P' to echo (latency).
func netsrv(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("netsrv on", addr)
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func(c net.Conn) {
			defer c.Close()
			mode := make([]byte, 1)
			if _, err := io.ReadFull(c, mode); err != nil {
				return
			}
			if mode[0] == 'T' {
				io.Copy(io.Discard, c)
			} else {
				io.Copy(c, c)
			}
		}(c)
	}
}

// netbench prints TCP throughput over 3 s and the round-trip time of 1-byte messages.
func netbench(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	buf := make([]byte, 128<<10)
	c.Write([]byte{'T'})
	var sent int64
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		n, err := c.Write(buf)
		if err != nil {
			return err
		}
		sent += int64(n)
	}
	// Wait until the server has read everything: it closes after our EOF.
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
	secs := time.Since(start).Seconds()
	c.Close()

	p, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer p.Close()
	p.Write([]byte{'P'})
	one := []byte{1}
	var rtts []time.Duration
	for i := 0; i < 2000; i++ {
		t := time.Now()
		if _, err := p.Write(one); err != nil {
			return err
		}
		if _, err := io.ReadFull(p, one); err != nil {
			return err
		}
		rtts = append(rtts, time.Since(t))
	}
	sort.Slice(rtts, func(a, b int) bool { return rtts[a] < rtts[b] })
	fmt.Printf("throughput_mbit=%.0f rtt_p50_us=%d rtt_p99_us=%d\n", float64(sent)*8/secs/1e6,
		rtts[len(rtts)/2].Microseconds(), rtts[len(rtts)*99/100].Microseconds())
	return nil
}
