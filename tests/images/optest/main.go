// Command optest is the project's test image program: an HTTP server that names the pod that
// answered, and the client side the tests run inside pods (get, resolve, sleep).
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: optest serve [ADDR] | get URL | resolve NAME | tcp HOST:PORT | env NAME... | ls DIR PREFIX | netsrv [ADDR] | netbench HOST:PORT | sleep")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "optest:", err)
		os.Exit(1)
	}
}

func run(cmd string, args []string) error {
	switch cmd {
	case "serve":
		addr := ":8080"
		if len(args) > 0 {
			addr = args[0]
		}
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s\n", host)
		})
		fmt.Println("serving on", addr)
		return http.ListenAndServe(addr, nil)
	case "get":
		if len(args) != 1 {
			return fmt.Errorf("get URL")
		}
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(args[0])
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, body)
		return nil
	case "resolve":
		if len(args) != 1 {
			return fmt.Errorf("resolve NAME")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Println(strings.Join(addrs, " "))
		return nil
	case "tcp":
		if len(args) != 1 {
			return fmt.Errorf("tcp HOST:PORT")
		}
		conn, err := net.DialTimeout("tcp", args[0], 5*time.Second)
		if err != nil {
			return err
		}
		fmt.Println("connected", conn.RemoteAddr())
		return conn.Close()
	case "env":
		for _, k := range args {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
		return nil
	case "ls":
		if len(args) != 2 {
			return fmt.Errorf("ls DIR PREFIX")
		}
		ents, err := os.ReadDir(args[0])
		if err != nil {
			return err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), args[1]) {
				fmt.Println(e.Name())
			}
		}
		return nil
	case "netsrv":
		addr := ":9000"
		if len(args) > 0 {
			addr = args[0]
		}
		return netsrv(addr)
	case "netbench":
		if len(args) != 1 {
			return fmt.Errorf("netbench HOST:PORT")
		}
		return netbench(args[0])
	case "write":
		if len(args) != 2 {
			return fmt.Errorf("write FILE CONTENT")
		}
		return os.WriteFile(args[0], []byte(args[1]), 0o644)
	case "read":
		if len(args) != 1 {
			return fmt.Errorf("read FILE")
		}
		b, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", b)
		return nil
	case "load":
		// GETs URL from 4 workers until killed: CPU load on whatever serves it.
		if len(args) != 1 {
			return fmt.Errorf("load URL")
		}
		c := &http.Client{Timeout: 5 * time.Second}
		for i := 0; i < 4; i++ {
			go func() {
				for {
					if resp, err := c.Get(args[0]); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					} else {
						time.Sleep(100 * time.Millisecond)
					}
				}
			}()
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		return nil
	case "sleep":
		// Wait for the kubelet's SIGTERM; a bare select{} would trip Go's deadlock detector.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}
