// Command ocimerge joins single-image OCI archives (as scripts/ociimage writes them) into one
// OCI layout holding every image: the air-gap images archive.
//
//	ocimerge -o airgap.tar pause.tar coredns.tar
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ocimerge:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("o", "", "output archive")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		return errors.New("usage: ocimerge -o OUT IN.tar [IN.tar]")
	}
	blobs := map[string][]byte{}
	var manifests []json.RawMessage
	for _, in := range flag.Args() {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			name := strings.TrimPrefix(h.Name, "./")
			switch {
			case strings.HasPrefix(name, "blobs/") && h.Typeflag == tar.TypeReg:
				blobs[name] = data
			case name == "index.json":
				var idx struct{ Manifests []json.RawMessage }
				if err := json.Unmarshal(data, &idx); err != nil {
					return fmt.Errorf("%s: index.json: %w", in, err)
				}
				manifests = append(manifests, idx.Manifests...)
			}
		}
		f.Close()
	}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	names := make([]string, 0, len(blobs))
	for n := range blobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := add(n, blobs[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(*out, b.Bytes(), 0o644)
}
