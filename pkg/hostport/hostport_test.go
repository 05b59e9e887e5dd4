package hostport

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse([]string{"8080,9000/udp", " 53/UDP ", "", "7000/sctp", "65535/tcp"})
	want := []Port{{8080, "TCP"}, {9000, "UDP"}, {53, "UDP"}, {7000, "SCTP"}, {65535, "TCP"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Parse: %v %v, want %v", got, err, want)
	}
	for _, bad := range []string{"80x", "0", "65536", "-1", "8080/icmp", "/udp", "8080/", "http", "1.5"} {
		_, err := Parse([]string{"22", bad})
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) || !strings.Contains(err.Error(), "such as 8080 or 9000/udp") {
			t.Errorf("%q: %v; want an error naming it and the form", bad, err)
		}
	}
}
