package embedded

import (
	"io"
	"strings"
	"testing"
	"testing/fstest"
)

func TestArchive(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	fsys := fstest.MapFS{
		"assets/x/payload.tar.zst":        {Data: []byte("zst")},
		"assets/x/payload.tar.zst.sha256": {Data: []byte(sum + "\n")},
	}
	a, err := archive(fsys, "assets/x")
	if err != nil || a.Sum != sum {
		t.Fatalf("archive: %+v %v", a, err)
	}
	rc, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "zst" {
		t.Fatalf("content %q", b)
	}
	if _, err := archive(fstest.MapFS{}, "assets/x"); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("no payload: %v", err)
	}
}
