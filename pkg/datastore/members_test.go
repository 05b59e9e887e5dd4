package datastore

import (
	"errors"
	"testing"
)

// A joining server may take its own old member's place, or a member that never started, but
// never the peer address of another server's live member (a member add removes what holds it).
func TestCheckPeerURL(t *testing.T) {
	ms := []Member{{ID: 1, Name: "s1", PeerURLs: []string{"https://10.0.0.1:2380"}},
		{ID: 2, Name: "s2", PeerURLs: []string{"https://10.0.0.2:2380"}},
		{ID: 3, Name: "", PeerURLs: []string{"https://10.0.0.3:2380"}}}
	for _, c := range []struct {
		name, url string
		ok        bool
	}{
		{"s2", "https://10.0.0.2:2380", true},  // s2 again, its password proven
		{"s3", "https://10.0.0.3:2380", true},  // a join that failed halfway, tried again
		{"s4", "https://10.0.0.4:2380", true},  // a new address
		{"s4", "https://10.0.0.2:2380", false}, // s2's address under another name
	} {
		err := checkPeerURL(ms, c.name, c.url)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrMemberConflict)) {
			t.Errorf("%s at %s: %v", c.name, c.url, err)
		}
	}
}
