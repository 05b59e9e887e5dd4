package images

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
)

type call struct {
	args  []string
	stdin string
}

func fakeRunner(calls *[]call) Runner {
	return func(_ context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
		var in []byte
		if stdin != nil {
			in, _ = io.ReadAll(stdin)
		}
		*calls = append(*calls, call{args, string(in)})
		if args[5] == "import" {
			return []byte("unpacking " + string(in) + " (sha256:abc)...done\n"), nil
		}
		return nil, nil
	}
}

func TestImportAllPinsEmbeddedAndDirArchives(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.tar"), []byte("docker.io/x/a:1"), 0o644)
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write([]byte("docker.io/x/b:1"))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "b.tar.zst"), zb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)

	var calls []call
	im := Importer{Ctr: "ctr", Socket: "/s", Run: fakeRunner(&calls)}
	emb := fstest.MapFS{"images/pause.tar": {Data: []byte("docker.io/outpostk8s/pause:1")}}
	refs, err := im.ImportAll(context.Background(), emb, []string{"images/pause.tar"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"docker.io/outpostk8s/pause:1", "docker.io/x/a:1", "docker.io/x/b:1"}
	if !reflect.DeepEqual(refs, want) {
		t.Fatalf("refs = %v, want %v", refs, want)
	}
	var labels []string
	for _, c := range calls {
		if c.args[:4][3] != Namespace {
			t.Errorf("namespace not k8s.io: %v", c.args)
		}
		if c.args[5] == "label" {
			labels = append(labels, c.args[6]+" "+c.args[7])
		}
	}
	if len(labels) != 3 || !strings.HasSuffix(labels[0], PinnedLabel) {
		t.Errorf("labels = %v", labels)
	}
}

func TestParseImported(t *testing.T) {
	out := "unpacking docker.io/a:1 (sha256:1)...done\ndocker.io/b:2 saved\n"
	if got := parseImported([]byte(out)); !reflect.DeepEqual(got, []string{"docker.io/a:1", "docker.io/b:2"}) {
		t.Errorf("got %v", got)
	}
}
