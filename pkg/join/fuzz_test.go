package join

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bodies to the join request decoder: it must never panic,
// and what it accepts must be a valid request.
func FuzzDecodeRequest(f *testing.F) {
	req, _, err := newRequest(Node{Name: "n1", IP: "10.0.0.2", Password: pwA})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(req)
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"nodeName":"kubernetes","nodeIP":"1.2.3.4","nodePassword":"aaaaaaaaaaaaaaaaaaaa"}`))
	f.Add([]byte(`{"nodeName":"n1","nodeIP":"::1","kubeletCSR":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte("\x00\xff"))
	h := &Handler{Reserved: []string{"localhost", "kubernetes"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", JoinPath, bytes.NewReader(body))
		got, _, fail := h.decode(r)
		if fail != nil {
			if got != nil || fail.Reason != ReasonBadRequest {
				t.Fatalf("refusal %+v with request %+v", fail, got)
			}
			return
		}
		if err := CheckRequest(*got, h.Reserved); err != nil {
			t.Fatalf("accepted an invalid request: %v", err)
		}
	})
}
