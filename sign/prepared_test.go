package sign

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A Prepared signed twice yields two links; the second must not write over
// the first, which shares the Prepared's buffer.
func TestPreparedSignedTwiceKeepsBothLinks(t *testing.T) {
	hs, err := NewHMACSigner("GOOG1EXAMPLE", "secret")
	if err != nil {
		t.Fatal(err)
	}
	u, err := New(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	prep, err := u.Prepare(Request{Method: "GET", Bucket: "bkt", Object: "o", Expires: time.Minute, Time: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	first := u.SignedURL(prep, []byte{0xaa, 0xbb})
	want := first.URL
	second := u.SignedURL(prep, []byte{0x11, 0x22, 0x33})
	if first.URL != want || !strings.HasSuffix(first.URL, "X-Goog-Signature=aabb") {
		t.Errorf("first link changed to %s", first.URL)
	}
	if !strings.HasSuffix(second.URL, "X-Goog-Signature=112233") || first == second {
		t.Errorf("second link %s", second.URL)
	}
	if strings.TrimSuffix(first.URL, "aabb") != strings.TrimSuffix(second.URL, "112233") {
		t.Errorf("links differ before the signature:\n%s\n%s", first.URL, second.URL)
	}
}

// Sign through AppendSign (HMAC, in place) and through Sign + SignedURL
// produce the same link, for requests that outgrow Prepared's inline arrays
// and the arena's size estimate.
func TestAppendSignMatchesSign(t *testing.T) {
	hs, err := NewHMACSigner("GOOG1EXAMPLE", "secret")
	if err != nil {
		t.Fatal(err)
	}
	u, err := New(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("ü/ %", 180)
	var many []Param
	for i := range 12 {
		many = append(many, Param{Name: "p" + strings.Repeat("x", i), Value: long[:i*7]})
	}
	var headers []Header
	for i := range 6 {
		headers = append(headers, Header{Name: "X-Goog-Meta-" + strings.Repeat("k", i+1), Value: "v"})
	}
	for _, r := range []Request{
		{Method: "GET", Bucket: "bkt", Object: "o"},
		{Method: "PUT", Bucket: "bucket", Object: long, Query: many, Headers: headers},
		{Method: "RESUMABLE", Bucket: "bucket", Object: "a b", Headers: headers[:2]},
	} {
		r.Expires, r.Time = time.Hour, time.Unix(1700000000, 0)
		got, err := u.Sign(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		prep, err := u.Prepare(r)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := hs.Sign(context.Background(), prep.Scope, []byte(prep.StringToSign))
		if err != nil {
			t.Fatal(err)
		}
		want := u.SignedURL(prep, sig)
		if got.URL != want.URL || len(got.Headers) != len(want.Headers) {
			t.Errorf("%s %.20s: in place\n%s\nvia SignedURL\n%s", r.Method, r.Object, got.URL, want.URL)
		}
		p, err := ParseSignedURL(got.URL, got.Method, got.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyHMAC([]byte("secret")); err != nil {
			t.Errorf("%s: %v", r.Method, err)
		}
	}
}

// A request may not set the signing parameters itself, in either dialect
// or letter case: the URL would carry them twice.
func TestSigningParametersCannotBeSet(t *testing.T) {
	hs, err := NewHMACSigner("AKIDEXAMPLE", "secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts *Options
		name string
		ok   bool
	}{
		{nil, "X-Goog-Expires", false},
		{nil, "x-goog-signature", false},
		{nil, "X-Goog-SignedHeaders", false},
		{nil, "X-Goog-Meta", true},
		{nil, "X-Amz-Expires", true}, // not a GOOG4 signing parameter
		{&Options{Dialect: AWS4, Region: "us-east-1"}, "X-AMZ-CREDENTIAL", false},
		{&Options{Dialect: AWS4, Region: "us-east-1"}, "x-amz-date", false},
		{&Options{Dialect: AWS4, Region: "us-east-1"}, "response-content-type", true},
	} {
		u, err := New(hs, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = u.Sign(context.Background(), Request{Method: "GET", Bucket: "bkt", Object: "o", Expires: time.Minute,
			Time: time.Unix(1700000000, 0), Query: []Param{{Name: tc.name, Value: "1"}}})
		if ok := err == nil; ok != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
