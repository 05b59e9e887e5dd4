package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/klauspost/compress/zstd"
)

type call struct {
	args  []string
	stdin int
}

func fakeRunner(calls *[]call) Runner {
	return func(_ context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
		n := 0
		if stdin != nil {
			b, _ := io.ReadAll(stdin)
			n = len(b)
		}
		*calls = append(*calls, call{args, n})
		return nil, nil
	}
}

// ociArchive is a minimal OCI layout naming ref, as scripts/ociimage writes it.
func ociArchive(t *testing.T, ref string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	idx := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1,"annotations":{"io.containerd.image.name":%q,"org.opencontainers.image.ref.name":"1"}}]}`, ref)
	tw.WriteHeader(&tar.Header{Name: "oci-layout", Mode: 0o644, Size: 2})
	tw.Write([]byte("{}"))
	tw.WriteHeader(&tar.Header{Name: "index.json", Mode: 0o644, Size: int64(len(idx))})
	tw.Write([]byte(idx))
	tw.Close()
	return b.Bytes()
}

func TestImportAllPinsEmbeddedAndDirArchives(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.tar"), ociArchive(t, "docker.io/x/a:1"), 0o644)
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(ociArchive(t, "docker.io/x/b:1"))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "b.tar.zst"), zb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)

	var calls []call
	im := Importer{Ctr: "ctr", Socket: "/s", Run: fakeRunner(&calls)}
	emb := fstest.MapFS{"images/pause.tar": {Data: ociArchive(t, "docker.io/outpostk8s/pause:1")}}
	refs, err := node(t, im, emb, dir).importAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"docker.io/outpostk8s/pause:1", "docker.io/x/a:1", "docker.io/x/b:1"}
	if !reflect.DeepEqual(refs, want) {
		t.Fatalf("refs = %v, want %v", refs, want)
	}
	var labels []string
	imports := 0
	for _, c := range calls {
		if c.args[3] != Namespace {
			t.Errorf("namespace not k8s.io: %v", c.args)
		}
		switch c.args[5] {
		case "label":
			labels = append(labels, c.args[6]+" "+c.args[7])
		case "import":
			imports++
			if c.stdin == 0 {
				t.Error("import got no archive on stdin (zstd not decompressed?)")
			}
		}
	}
	if imports != 3 || len(labels) != 3 || !strings.HasSuffix(labels[0], PinnedLabel) {
		t.Errorf("imports %d labels %v", imports, labels)
	}
}

func TestArchiveRefsRejectsGarbage(t *testing.T) {
	if _, err := archiveRefs(strings.NewReader("not a tar at all, just text that is long enough to fail the header checksum..........................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................")); err == nil {
		t.Error("no error for a non-tar archive")
	}
}

// listing is `ctr images ls` as containerd prints it (SIZE holds a space).
const listing = `REF                          TYPE                                       DIGEST     SIZE      PLATFORMS   LABELS
docker.io/outpostk8s/pause:1 application/vnd.oci.image.manifest.v1+json sha256:00  318.3 KiB linux/amd64 io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned
docker.io/x/a:1              application/vnd.oci.image.manifest.v1+json sha256:00  1.0 MiB   linux/amd64 io.cri-containerd.image=managed
sha256:00                    application/vnd.oci.image.manifest.v1+json sha256:00  1.0 MiB   linux/amd64 -
`

// A restart imports only what containerd does not hold, pinned, at the archive's digest: the
// embedded pause image is skipped; a.tar, held but not pinned,
// and b.tar, held at another digest, are imported again.
func TestSkipsWhatContainerdHolds(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.tar"), ociArchive(t, "docker.io/x/a:1"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.tar"), ociArchive(t, "docker.io/x/b:1"), 0o644)
	var imports []string
	im := Importer{Ctr: "ctr", Socket: "/s", Run: func(_ context.Context, stdin io.Reader, _ string, args ...string) ([]byte, error) {
		switch args[5] {
		case "ls":
			return []byte(listing + "docker.io/x/b:1 application/vnd.oci.image.manifest.v1+json sha256:11 1.0 MiB linux/amd64 io.cri-containerd.pinned=pinned\n"), nil
		case "import":
			b, _ := io.ReadAll(stdin)
			refs, _ := archiveRefs(bytes.NewReader(b))
			imports = append(imports, refs[0].Name)
		}
		return nil, nil
	}}
	emb := fstest.MapFS{"images/pause.tar": {Data: ociArchive(t, "docker.io/outpostk8s/pause:1")}}
	refs, err := node(t, im, emb, dir).importAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docker.io/outpostk8s/pause:1", "docker.io/x/a:1", "docker.io/x/b:1"}; !reflect.DeepEqual(refs, want) {
		t.Errorf("refs %v, want %v", refs, want)
	}
	if want := []string{"docker.io/x/a:1", "docker.io/x/b:1"}; !reflect.DeepEqual(imports, want) {
		t.Errorf("imported %v, want %v", imports, want)
	}
}

func TestParseList(t *testing.T) {
	p := parseList([]byte(listing))
	if h := p["docker.io/outpostk8s/pause:1"]; h.Digest != "sha256:00" || !h.Pinned {
		t.Errorf("pause %+v", h)
	}
	if h := p["docker.io/x/a:1"]; h.Digest != "sha256:00" || h.Pinned {
		t.Errorf("a %+v", h)
	}
	if len(p) != 3 {
		t.Errorf("%d entries: %v", len(p), p)
	}
}

// Two archives naming one image at different digests: the last one wins at every start, as it
// did before the skip (a user's archive overriding an embedded one).
func TestLastArchiveWins(t *testing.T) {
	dir := t.TempDir()
	user := bytes.ReplaceAll(ociArchive(t, "docker.io/outpostk8s/pause:1"), []byte("sha256:00"), []byte("sha256:11"))
	os.WriteFile(filepath.Join(dir, "pause.tar"), user, 0o644)
	emb := fstest.MapFS{"images/pause.tar": {Data: ociArchive(t, "docker.io/outpostk8s/pause:1")}}
	for start, ls := range []string{"", "docker.io/outpostk8s/pause:1 t sha256:11 1 KiB linux/amd64 " + PinnedLabel + "\n"} {
		var imported []string
		im := Importer{Ctr: "ctr", Socket: "/s", Run: func(_ context.Context, stdin io.Reader, _ string, args ...string) ([]byte, error) {
			switch args[5] {
			case "ls":
				return []byte("REF TYPE DIGEST SIZE PLATFORMS LABELS\n" + ls), nil
			case "import":
				b, _ := io.ReadAll(stdin)
				refs, _ := archiveRefs(bytes.NewReader(b))
				imported = append(imported, refs[0].Digest)
			}
			return nil, nil
		}}
		if _, err := node(t, im, emb, dir).importAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(imported) == 0 || imported[len(imported)-1] != "sha256:11" {
			t.Errorf("start %d: imported %v, the user's archive (sha256:11) must be last", start, imported)
		}
	}
}

// node is the images component over im, with the bundled archives of emb, as a node runs it.
func node(t *testing.T, im Importer, emb fstest.MapFS, dir string) *Images {
	t.Helper()
	bundled := t.TempDir()
	for name, f := range emb {
		if err := os.WriteFile(filepath.Join(bundled, filepath.Base(name)), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &Images{Importer: im, Bundled: bundled, Dir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// dockerArchive is a docker-save archive: manifest.json with RepoTags, no digests.
func dockerArchive(t *testing.T, tags ...string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	m := fmt.Sprintf(`[{"Config":"c.json","RepoTags":["%s"],"Layers":[]}]`, strings.Join(tags, `","`))
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(m))})
	tw.Write([]byte(m))
	tw.Close()
	return b.Bytes()
}

// fakeContainerd imports by recording each image at a digest of its own (the digest containerd
// would make from a docker-save archive) and lists what it holds.
type fakeContainerd struct {
	held    map[string]string // name → digest
	next    int
	imports []string
}

func (f *fakeContainerd) run(_ context.Context, stdin io.Reader, _ string, args ...string) ([]byte, error) {
	switch args[5] {
	case "ls":
		out := "REF TYPE DIGEST SIZE PLATFORMS LABELS\n"
		for n, d := range f.held {
			out += n + " application/vnd.oci.image.manifest.v1+json " + d + " 1.0 MiB linux/amd64 " + PinnedLabel + "\n"
		}
		return []byte(out), nil
	case "import":
		b, _ := io.ReadAll(stdin)
		refs, _ := archiveRefs(bytes.NewReader(b))
		for _, r := range refs {
			f.next++
			f.held[r.Name] = fmt.Sprintf("sha256:%02d", f.next)
			f.imports = append(f.imports, r.Name)
		}
	}
	return nil, nil
}

func TestUndigestedArchivesImportedOnce(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(t.TempDir(), "images-imported.json")
	a := filepath.Join(dir, "a.tar")
	os.WriteFile(a, dockerArchive(t, "docker.io/x/a:1", "docker.io/x/a:2"), 0o644)
	ctrd := &fakeContainerd{held: map[string]string{}}
	start := func() []string {
		t.Helper()
		ctrd.imports = nil
		n := node(t, Importer{Ctr: "ctr", Socket: "/s", Run: ctrd.run}, nil, dir)
		n.RecordFile = record
		if _, err := n.importAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		return ctrd.imports
	}
	if got := start(); len(got) != 2 {
		t.Fatalf("first start imported %v", got)
	}
	if got := start(); len(got) != 0 {
		t.Errorf("unchanged archive imported again: %v", got)
	}
	// containerd lost an image (pruned by hand): imported again.
	delete(ctrd.held, "docker.io/x/a:2")
	if got := start(); len(got) != 2 {
		t.Errorf("after a prune imported %v", got)
	}
	// The file changed (a new time): imported again.
	later := time.Now().Add(time.Hour)
	os.Chtimes(a, later, later)
	if got := start(); len(got) != 2 {
		t.Errorf("after a change imported %v", got)
	}
	if got := start(); len(got) != 0 {
		t.Errorf("changed archive imported twice: %v", got)
	}
	// Two archives naming one image: neither is recorded, the last one wins at every start.
	os.WriteFile(filepath.Join(dir, "b.tar"), dockerArchive(t, "docker.io/x/a:1"), 0o644)
	start()
	if got := start(); !reflect.DeepEqual(got, []string{"docker.io/x/a:1", "docker.io/x/a:2", "docker.io/x/a:1"}) {
		t.Errorf("with an overlap imported %v", got)
	}
	// With the overlap gone the archive is recorded again; a damaged record means importing again.
	os.Remove(filepath.Join(dir, "b.tar"))
	start()
	if r := LoadRecord(record); len(r.Archives) != 1 || len(r.Archives[a].Images) != 2 {
		t.Errorf("record %+v", r)
	}
	os.WriteFile(record, []byte("{garbage"), 0o600)
	if got := start(); len(got) != 2 {
		t.Errorf("with a damaged record imported %v", got)
	}
}
