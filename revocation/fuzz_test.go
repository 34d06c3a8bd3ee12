package revocation

import (
	"os"
	"testing"
	"time"
)

// FuzzParse: Parse never panics; what it accepts validates, marshals and
// parses back to a list of the same size, and compiles.
func FuzzParse(f *testing.F) {
	golden, err := os.ReadFile("testdata/list.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"prefixes":[{"bucket":"b","prefix":"","added":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"tokens":[{"id":"0123456789abcdef01234567","added":"2026-01-01T00:00:00Z"}]} x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("accepted list does not validate: %v", err)
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("marshalled list does not parse: %v\n%s", err, out)
		}
		if again.Len() != l.Len() {
			t.Fatalf("round trip: %d entries, want %d", again.Len(), l.Len())
		}
		s := Compile(again)
		_ = s.Revoked("0123456789abcdef01234567", "b", "o", time.Unix(0, 0))
	})
}
