// Command ociimage writes a single-layer OCI image archive from local files, so images are
// built without a registry or a container engine. containerd imports the result with
// `ctr images import`; the name travels in the index annotations.
//
//	ociimage -name docker.io/outpost/pause:1 -o pause.tar -entrypoint /pause /pause=bin/pause
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

type blobs map[string][]byte

func (b blobs) add(mediaType string, data []byte) descriptor {
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	b[d] = data
	return descriptor{MediaType: mediaType, Digest: d, Size: len(data)}
}

// epoch fixes every timestamp so the same inputs give the same archive, byte for byte.
var epoch = time.Unix(0, 0).UTC()

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run() error {
	name := flag.String("name", "", "full image reference, e.g. docker.io/outpost/pause:1")
	out := flag.String("o", "", "output archive")
	entry := flag.String("entrypoint", "", "entrypoint, space separated")
	arch := flag.String("arch", runtime.GOARCH, "architecture")
	// The payload's images are stored as plain tars: the payload's one zstd stream compresses
	// them with everything else, far better than gzip each on its own.
	gz := flag.Bool("gzip", false, "gzip the layer")
	flag.Parse()
	if *name == "" || *out == "" || flag.NArg() == 0 {
		return errors.New("usage: ociimage -name REF -o OUT [-entrypoint CMD] /path/in/image=local/file")
	}
	layer, diffID, err := buildLayer(flag.Args(), *gz)
	if err != nil {
		return err
	}
	b := blobs{}
	layerType := "application/vnd.oci.image.layer.v1.tar"
	if *gz {
		layerType += "+gzip"
	}
	layerDesc := b.add(layerType, layer)
	cfg := map[string]any{
		"architecture": *arch, "os": "linux", "created": epoch.Format(time.RFC3339),
		"config": map[string]any{"Entrypoint": strings.Fields(*entry), "Env": []string{"PATH=/bin:/"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	}
	cfgJSON, _ := json.Marshal(cfg)
	cfgDesc := b.add("application/vnd.oci.image.config.v1+json", cfgJSON)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": cfgDesc, "layers": []descriptor{layerDesc},
	})
	mDesc := b.add("application/vnd.oci.image.manifest.v1+json", manifest)
	tag := *name
	if i := strings.LastIndex(tag, ":"); i > strings.LastIndex(tag, "/") {
		tag = tag[i+1:]
	}
	mDesc.Annotations = map[string]string{"io.containerd.image.name": *name, "org.opencontainers.image.ref.name": tag}
	mDesc.Platform = map[string]string{"architecture": *arch, "os": "linux"}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []descriptor{mDesc}})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(path string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put("index.json", index); err != nil {
		return err
	}
	for _, d := range []descriptor{layerDesc, cfgDesc, mDesc} {
		if err := put("blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:"), b[d.Digest]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}

// buildLayer packs dst=src pairs into a tar, gzip'd when gz, and returns it with its
// uncompressed digest.
func buildLayer(pairs []string, gz bool) ([]byte, string, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	dirs := map[string]bool{}
	for _, p := range pairs {
		dst, src, ok := strings.Cut(p, "=")
		if !ok {
			return nil, "", fmt.Errorf("%q: want /path/in/image=local/file", p)
		}
		dst = strings.TrimPrefix(dst, "/")
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, "", err
		}
		info, err := os.Stat(src)
		if err != nil {
			return nil, "", err
		}
		parts := strings.Split(dst, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
					return nil, "", err
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: dst, Mode: int64(info.Mode().Perm()), Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(raw.Bytes())
	if !gz {
		return raw.Bytes(), "sha256:" + hex.EncodeToString(sum[:]), nil
	}
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.ModTime = epoch
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return out.Bytes(), "sha256:" + hex.EncodeToString(sum[:]), nil
}
