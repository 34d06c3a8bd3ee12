package sign_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/linkissuer/linkissuer/internal/vectors"
	"github.com/linkissuer/linkissuer/sign"
)

// FuzzCanonicalize feeds arbitrary object names, one header and one query
// parameter through Prepare and the URL assembly. Contract checked:
//   - nothing panics;
//   - invalid input is refused with a *sign.InputError, valid input is
//     accepted (validInput states the rules independently of the code);
//   - for accepted input the canonical request has exactly one line per
//     part (no line break leaks from an input), and the URL round-trips:
//     net/url parses it, its path decodes to /BUCKET/OBJECT and is the
//     signed path, and every query value decodes to the value given.
//
// `go test` runs the seeds only; fuzz with
//
//	go test -run '^$' -fuzz FuzzCanonicalize -fuzztime 60s ./sign/
func FuzzCanonicalize(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.object, s.headerName, s.headerValue, s.queryName, s.queryValue)
	}
	hs, err := sign.NewHMACSigner("GOOG1EXAMPLE", "secret")
	if err != nil {
		f.Fatal(err)
	}
	u, err := sign.New(hs, nil)
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2019, 2, 1, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, object, headerName, headerValue, queryName, queryValue string) {
		req := sign.Request{
			Method:  "GET",
			Bucket:  "test-bucket",
			Object:  object,
			Headers: []sign.Header{{Name: headerName, Value: headerValue}},
			Query:   []sign.Param{{Name: queryName, Value: queryValue}},
			Expires: time.Hour,
			Time:    at,
		}
		prep, err := u.Prepare(req)
		valid := validInput(object, headerName, headerValue) && !signingParam(queryName)
		if err != nil {
			var ie *sign.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Prepare failed with %T, want *sign.InputError: %v", err, err)
			}
			if valid {
				t.Fatalf("Prepare refused valid input: %v", err)
			}
			return
		}
		if !valid {
			t.Fatalf("Prepare accepted invalid input (object %q, header %q: %q)", object, headerName, headerValue)
		}

		cr := prep.Canonical.String()
		// METHOD, PATH, QUERY, one line per header, blank, SIGNED, PAYLOAD.
		if got, want := strings.Count(cr, "\n"), 5+len(prep.Canonical.Headers); got != want {
			t.Fatalf("canonical request has %d line breaks, want %d:\n%q", got, want, cr)
		}

		signed, err := u.Sign(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		pu, err := url.Parse(signed.URL)
		if err != nil {
			t.Fatalf("URL does not parse: %v\n%s", err, redact(signed.URL))
		}
		wantPath := "/test-bucket"
		if object != "" {
			wantPath += "/" + object
		}
		if pu.Path != wantPath {
			t.Fatalf("URL path decodes to %q, want %q", pu.Path, wantPath)
		}
		if pu.EscapedPath() != prep.Canonical.Path {
			t.Fatalf("URL path %q is not the signed path %q", pu.EscapedPath(), prep.Canonical.Path)
		}
		q, err := url.ParseQuery(pu.RawQuery)
		if err != nil {
			t.Fatalf("query does not parse: %v", err)
		}
		if !slices.Contains(q[queryName], queryValue) {
			t.Fatalf("query %q decodes to %q, want %q among them", queryName, q[queryName], queryValue)
		}
		for _, p := range prep.Canonical.Query {
			if !slices.Contains(q[p.Name], p.Value) {
				t.Fatalf("signed parameter %q=%q is not in the URL", p.Name, p.Value)
			}
		}
		// The URL's query is the canonical query (built on a fast path)
		// followed by the signature.
		if want := sign.CanonicalQuery(prep.Canonical.Query); !strings.HasPrefix(pu.RawQuery, want+"&X-Goog-Signature=") {
			t.Fatalf("URL query is not the generic canonical query:\n got %s\nwant %s", pu.RawQuery, want)
		}
		if n := len(pu.Query()); n < 6 || n > 7 { // 5 signing + signature + the given one (unless it collides)
			t.Fatalf("URL has %d distinct parameters", n)
		}
		name := strings.ToLower(strings.TrimSpace(headerName))
		if name != "host" && !slices.Contains(strings.Split(q.Get("X-Goog-SignedHeaders"), ";"), name) {
			t.Fatalf("header %q is not signed (%q)", name, q.Get("X-Goog-SignedHeaders"))
		}
	})
}

// validInput states which inputs Prepare must accept. Object: empty (a
// bucket-level URL) or valid UTF-8 of at most 1024 bytes, without CR or LF,
// not "." or "..". Header: a name that, trimmed, is non-empty printable
// ASCII without spaces, ':' or ';' (the X-Goog-SignedHeaders separator); a
// value without CR or LF. Query parameters are refused only when they name
// a signing parameter (see signingParam): every byte is escaped.
func validInput(object, headerName, headerValue string) bool {
	if object != "" {
		if len(object) > sign.MaxObjectName || !utf8.ValidString(object) ||
			strings.ContainsAny(object, "\r\n") || object == "." || object == ".." {
			return false
		}
	}
	name := strings.TrimSpace(headerName)
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == ':' || c == ';' || c >= 0x7f {
			return false
		}
	}
	return !strings.ContainsAny(headerValue, "\r\n")
}

// signingParam reports whether name is one of the GOOG4 signing
// parameters, which a request may not set.
func signingParam(name string) bool {
	for _, n := range []string{"Algorithm", "Credential", "Date", "Expires", "SignedHeaders", "Signature"} {
		if strings.EqualFold(name, "X-Goog-"+n) {
			return true
		}
	}
	return false
}

type fuzzSeed struct{ object, headerName, headerValue, queryName, queryValue string }

// fuzzSeeds are the conformance vectors' inputs (first header and query
// parameter of each) plus a few hand-picked edge cases.
func fuzzSeeds() []fuzzSeed {
	seeds := []fuzzSeed{
		{"a b/~+%/é😀𝄞?#&=", " X-Goog-Meta-A\t", "\t a   b \t", "response-content-disposition", `attachment; filename="a b.txt"`},
		{"/leading//double", "Content-Type", "text/plain", "", ""},
		{"", "x", "", "a+b", "100%"},
		{".", "bad name", "v", "q", "v"},
		{"ok", "x-h", "line\nbreak", "q", "\xff"},
		{"\xff", "x-h", "v", "q", "v"},
		{"o", "x-h", "v", "x-goog-expires", "1"},
		{"o", "x-h", "v", "A", "before the algorithm"},
		{"o", "x-h", "v", "X-Goog-Credential-X", "between"},
	}
	data, err := os.ReadFile(vectors.Path(vectors.GCS))
	if err != nil {
		panic(err) // vendored in testdata/: always there
	}
	var f struct {
		Tests []struct {
			Object  string            `json:"object"`
			Headers map[string]string `json:"headers"`
			Query   map[string]string `json:"queryParameters"`
		} `json:"signingV4Tests"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return seeds
	}
	for _, c := range f.Tests {
		s := fuzzSeed{object: c.Object, headerName: "x-goog-meta-seed", headerValue: "v", queryName: "q", queryValue: "v"}
		for _, k := range sortedKeys(c.Headers) {
			s.headerName, s.headerValue = k, c.Headers[k]
			break
		}
		for _, k := range sortedKeys(c.Query) {
			s.queryName, s.queryValue = k, c.Query[k]
			break
		}
		seeds = append(seeds, s)
	}
	return seeds
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestHeaderNameSemicolon: ';' separates names in X-Goog-SignedHeaders, so a
// header name holding one makes the list ambiguous (";" gives ";;host") and
// the URL can never verify. Prepare must refuse it. Found by FuzzCanonicalize
// (testdata/fuzz/FuzzCanonicalize/4d10bb090b1888aa).
func TestHeaderNameSemicolon(t *testing.T) {
	hs, err := sign.NewHMACSigner("GOOG1EXAMPLE", "secret")
	if err != nil {
		t.Fatal(err)
	}
	u, err := sign.New(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{";", "x-a;x-b", "x-goog-meta-a;"} {
		_, err := u.Prepare(sign.Request{
			Method: "GET", Bucket: "test-bucket", Object: "o",
			Headers: []sign.Header{{Name: name, Value: "v"}},
			Expires: time.Hour, Time: time.Date(2019, 2, 1, 9, 0, 0, 0, time.UTC),
		})
		if !sign.IsInputError(err) {
			t.Errorf("header name %q: Prepare returned %v, want an *InputError", name, err)
		}
	}
}
