package revocation

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The golden list parses, and marshals back to the same bytes.
func TestParseGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/list.json")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 5 || l.Tokens[0].Note != "leaked in ticket 4411" || l.Prefixes[1].Bucket != "archive" {
		t.Errorf("parsed %+v", l)
	}
	out, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, data) {
		t.Errorf("round trip:\n%s\nwant\n%s", out, data)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{name: "empty", data: ``, want: "EOF"},
		{name: "not an object", data: `[]`, want: "cannot unmarshal"},
		{name: "version 2", data: `{"version":2}`, want: "version 2"},
		{name: "no version", data: `{}`, want: "version 0"},
		{name: "unknown field", data: `{"version":1,"users":[]}`, want: "unknown field"},
		{name: "trailing data", data: `{"version":1} {}`, want: "data after the list"},
		{name: "short token id", data: `{"version":1,"tokens":[{"id":"abc","added":"2026-01-01T00:00:00Z"}]}`, want: "tokens[0]"},
		{name: "upper-case token id", data: `{"version":1,"tokens":[{"id":"0123456789ABCDEF01234567","added":"2026-01-01T00:00:00Z"}]}`, want: "lower-case hex"},
		{name: "object without bucket", data: `{"version":1,"objects":[{"bucket":"","object":"o","added":"2026-01-01T00:00:00Z"}]}`, want: "objects[0]: bucket"},
		{name: "empty object", data: `{"version":1,"objects":[{"bucket":"b","object":"","added":"2026-01-01T00:00:00Z"}]}`, want: "object name"},
		{name: "bucket with slash", data: `{"version":1,"prefixes":[{"bucket":"b/c","prefix":"","added":"2026-01-01T00:00:00Z"}]}`, want: "prefixes[0]: bucket"},
		{name: "long note", data: `{"version":1,"prefixes":[{"bucket":"b","prefix":"","added":"2026-01-01T00:00:00Z","note":"` + strings.Repeat("n", 257) + `"}]}`, want: "note over"},
		{name: "too large", data: `{"version":1,"x":"` + strings.Repeat("a", MaxBytes) + `"}`, want: "at most 8388608"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestParseRefusesTooManyEntries(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"version":1,"objects":[`)
	for i := range MaxEntries + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"bucket":"b","object":"o","added":"2026-01-01T00:00:00Z"}`)
	}
	b.WriteString(`]}`)
	if _, err := Parse([]byte(b.String())); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "100001 entries") {
		t.Errorf("Parse: %v", err)
	}
}

func TestApply(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		start   List
		change  Change
		changed bool
		wantErr string
		check   func(*List) bool
	}{
		{name: "token", change: Change{TokenID: id, Note: "n"}, changed: true,
			check: func(l *List) bool {
				return len(l.Tokens) == 1 && l.Tokens[0].Added.Equal(t0) && l.Tokens[0].Note == "n"
			}},
		{name: "token again", start: List{Tokens: []Token{{ID: id}}}, change: Change{TokenID: id},
			check: func(l *List) bool { return len(l.Tokens) == 1 }},
		{name: "bad token", change: Change{TokenID: "zz"}, wantErr: "want 24..32 hex digits"},
		{name: "object", change: Change{Bucket: "b", Object: "o/p.pdf"}, changed: true,
			check: func(l *List) bool { return len(l.Objects) == 1 && l.Objects[0].Object == "o/p.pdf" }},
		{name: "object again", start: List{Objects: []Object{{Bucket: "b", Object: "o"}}}, change: Change{Bucket: "b", Object: "o"},
			check: func(l *List) bool { return len(l.Objects) == 1 }},
		{name: "whole bucket", change: Change{Bucket: "b", IsPrefix: true}, changed: true,
			check: func(l *List) bool { return len(l.Prefixes) == 1 && l.Prefixes[0].Prefix == "" }},
		{name: "before", change: Change{Before: t0.Add(-time.Hour)}, changed: true,
			check: func(l *List) bool { return l.Before.Equal(t0.Add(-time.Hour)) }},
		{name: "earlier before keeps the later", start: List{Before: t0}, change: Change{Before: t0.Add(-time.Hour)},
			check: func(l *List) bool { return l.Before.Equal(t0) }},
		{name: "empty change", change: Change{}, wantErr: "empty change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.start
			l.Version = Version
			changed, err := l.Apply(tt.change, t0)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Apply: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || changed != tt.changed || !tt.check(&l) {
				t.Errorf("Apply: changed %v, err %v, list %+v", changed, err, l)
			}
			if changed && !l.Updated.Equal(t0) {
				t.Errorf("updated %s", l.Updated)
			}
		})
	}
}

func TestSetRevoked(t *testing.T) {
	data, err := os.ReadFile("testdata/list.json")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	s := Compile(l)
	after := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		id, bkt, obj string
		issued       time.Time
		want         string
	}{
		{name: "token", id: "0123456789abcdef0123456789abcdef", bkt: "media", obj: "x", issued: after, want: ReasonToken},
		{name: "object", id: "ffff", bkt: "media", obj: "reports/q3.pdf", issued: after, want: ReasonObject},
		{name: "other object", id: "ffff", bkt: "media", obj: "reports/q4.pdf", issued: after, want: ""},
		{name: "same name other bucket", id: "ffff", bkt: "other", obj: "reports/q3.pdf", issued: after, want: ""},
		{name: "under prefix", id: "ffff", bkt: "media", obj: "campaigns/2026-02/a.png", issued: after, want: ReasonPrefix},
		{name: "prefix itself", id: "ffff", bkt: "media", obj: "campaigns/2026-02/", issued: after, want: ReasonPrefix},
		{name: "shorter than prefix", id: "ffff", bkt: "media", obj: "campaigns/", issued: after, want: ""},
		{name: "sibling prefix", id: "ffff", bkt: "media", obj: "campaigns/2026-03/a.png", issued: after, want: ""},
		{name: "whole bucket", id: "ffff", bkt: "archive", obj: "anything", issued: after, want: ReasonPrefix},
		{name: "issued before", id: "ffff", bkt: "media", obj: "x", issued: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), want: ReasonBefore},
		{name: "issued at the instant", id: "ffff", bkt: "media", obj: "x", issued: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Revoked(tt.id, tt.bkt, tt.obj, tt.issued); got != tt.want {
				t.Errorf("Revoked = %q, want %q", got, tt.want)
			}
		})
	}
}
