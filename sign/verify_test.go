package sign

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// Every conformance URL verifies against the dummy key's public key when
// parsed back, and fails once altered.
func TestVerifyConformanceURLs(t *testing.T) {
	f := loadConformance(t)
	key := conformanceKey(t)
	for _, c := range f.SigningV4Tests {
		t.Run(c.Description, func(t *testing.T) {
			headers := sortedHeaders(c.Headers)
			p, err := ParseSignedURL(c.ExpectedURL, c.Method, headers)
			if err != nil {
				t.Fatal(err)
			}
			if p.StringToSign != c.ExpectedStringToSign {
				t.Errorf("rebuilt string to sign:\n got %q\nwant %q", p.StringToSign, c.ExpectedStringToSign)
			}
			if err := p.VerifyRSA(key.Public()); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if err := p.CheckTime(c.Timestamp.Add(time.Second)); err != nil {
				t.Errorf("at signing time + 1s: %v", err)
			}
			if err := p.CheckTime(c.Timestamp.Add(time.Duration(c.Expiration) * time.Second)); !errors.Is(err, ErrExpired) {
				t.Errorf("at expiry: got %v, want ErrExpired", err)
			}
			if err := p.CheckTime(c.Timestamp.Add(-time.Minute)); !errors.Is(err, ErrNotYetValid) {
				t.Errorf("before signing: got %v, want ErrNotYetValid", err)
			}
			tampered := strings.Replace(c.ExpectedURL, "X-Goog-Expires=", "X-Goog-Expires=1", 1)
			tp, err := ParseSignedURL(tampered, c.Method, headers)
			if err != nil {
				t.Fatal(err)
			}
			if err := tp.VerifyRSA(key.Public()); !errors.Is(err, ErrTampered) {
				t.Errorf("tampered expiry verified: %v", err)
			}
		})
	}
}

func TestVerifyHMACAndTampering(t *testing.T) {
	secret := "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	hs, err := NewHMACSigner("GOOG1EXAMPLE", secret)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, d := range []Dialect{GOOG4, AWS4} {
		u, err := New(hs, &Options{Dialect: d, Region: "us-east-1", Endpoint: Endpoint{ClientEndpoint: "http://127.0.0.1:9000"}})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := u.Sign(context.Background(), Request{
			Method: "PUT", Bucket: "media", Object: "dir/a b+é.txt", Expires: time.Hour, Time: at,
			Headers: []Header{{"Content-Type", "text/plain"}},
			Query:   []Param{{"response-content-disposition", `attachment; filename="x y"`}},
		})
		if err != nil {
			t.Fatal(err)
		}
		hdr := []Header{{"content-type", "text/plain"}}
		tests := []struct {
			name    string
			url     string
			method  string
			headers []Header
			want    error
		}{
			{"intact", signed.URL, "PUT", hdr, nil},
			{"other object", strings.Replace(signed.URL, "dir/a", "dir/b", 1), "PUT", hdr, ErrTampered},
			{"other method", signed.URL, "GET", hdr, ErrTampered},
			{"other header value", signed.URL, "PUT", []Header{{"content-type", "text/html"}}, ErrTampered},
			{"missing signed header", signed.URL, "PUT", nil, ErrMalformed},
			{"other query", strings.Replace(signed.URL, "attachment", "inline", 1), "PUT", hdr, ErrTampered},
		}
		for _, tc := range tests {
			t.Run(d.String()+" "+tc.name, func(t *testing.T) {
				p, err := ParseSignedURL(tc.url, tc.method, tc.headers)
				if err == nil {
					err = p.VerifyHMAC([]byte(secret))
				}
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			})
		}
	}
}

// signedBy recognises a key's signatures over any message, and nothing
// else: it is what tells tampered from unknown key.
func TestSignedBy(t *testing.T) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("some request"))
	sig, err := rsa.SignPKCS1v15(nil, a, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte{}, sig...)
	flipped[10] ^= 1
	tests := []struct {
		name string
		sig  []byte
		pub  *rsa.PublicKey
		want bool
	}{
		{"own key", sig, &a.PublicKey, true},
		{"other key", sig, &b.PublicKey, false},
		{"altered signature", flipped, &a.PublicKey, false},
		{"short", sig[:100], &a.PublicKey, false},
		{"zero", make([]byte, 256), &a.PublicKey, false},
		{"above modulus", bytesOf(0xff, 256), &a.PublicKey, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := signedBy(tc.sig, tc.pub); got != tc.want {
				t.Errorf("signedBy = %v, want %v", got, tc.want)
			}
		})
	}
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// lowerSigningNames rewrites X-Goog-* / X-Amz-* parameter names in lower
// case, as gcloud and gsutil write them.
func lowerSigningNames(raw string) string {
	base, query, _ := strings.Cut(raw, "?")
	parts := strings.Split(query, "&")
	for i, p := range parts {
		if name, value, _ := strings.Cut(p, "="); strings.HasPrefix(name, "X-Goog-") || strings.HasPrefix(name, "X-Amz-") {
			parts[i] = strings.ToLower(name) + "=" + value
		}
	}
	return base + "?" + strings.Join(parts, "&")
}

// Verify, the pure half of `linkissuer verify`, on HMAC URLs of both
// dialects: names in any case (the canonical query rebuilt as sent), the
// method the signature fits, and the verdicts that do not change.
func TestVerifyVerdicts(t *testing.T) {
	secret := "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	hs, err := NewHMACSigner("GOOG1EXAMPLE", secret)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	keys := VerifyKeys{HMACAccessID: "GOOG1EXAMPLE", HMACSecret: []byte(secret)}
	for _, d := range []Dialect{GOOG4, AWS4} {
		u, err := New(hs, &Options{Dialect: d, Region: "us-east-1", Endpoint: Endpoint{ClientEndpoint: "http://127.0.0.1:9000"}})
		if err != nil {
			t.Fatal(err)
		}
		sign := func(method string) string {
			l, err := u.Sign(context.Background(), Request{
				Method: method, Bucket: "media", Object: "dir/a b+é.txt", Expires: time.Hour, Time: at,
				Query: []Param{{"response-content-disposition", `attachment; filename="x y"`}},
			})
			if err != nil {
				t.Fatal(err)
			}
			return l.URL
		}
		get, put := sign("GET"), sign("PUT")
		plus := strings.Replace(get, "filename%3D%22x%20y%22", "filename%3D%22x+y%22", 1)
		if plus == get {
			t.Fatal("the query has no %20 to replace")
		}
		lower := lowerSigningNames(get)
		if lower == get {
			t.Fatal("lowerSigningNames changed nothing")
		}
		// Names lower-cased after signing change the canonical query (it is
		// rebuilt as sent), so the signature no longer fits.
		tests := []struct {
			name       string
			url        string
			method     string
			at         time.Time
			want       Verdict
			wantMethod string
		}{
			{name: "as issued", url: get, method: "GET", want: Valid, wantMethod: "GET"},
			{name: "lower-case names are not the signed ones", url: lower, method: "GET", want: Tampered},
			{name: "plus for a space in the query", url: plus, method: "GET", want: Valid, wantMethod: "GET"},
			{name: "PUT found without a method", url: put, want: Valid, wantMethod: "PUT"},
			{name: "PUT checked as GET", url: put, method: "GET", want: WrongMethod, wantMethod: "PUT"},
			{name: "expired", url: get, method: "GET", at: at.Add(2 * time.Hour), want: Expired, wantMethod: "GET"},
			{name: "signing parameter twice", url: get + "&" + strings.ToLower(d.paramPrefix()) + "date=20261101T120000Z", method: "GET", want: Malformed},
			{name: "object changed", url: strings.Replace(get, "dir/a", "dir/b", 1), want: Tampered},
		}
		for _, tc := range tests {
			t.Run(d.String()+" "+tc.name, func(t *testing.T) {
				when := tc.at
				if when.IsZero() {
					when = at.Add(time.Minute)
				}
				res := Verify(context.Background(), VerifyRequest{URL: tc.url, Method: tc.method, At: when}, keys)
				if res.Verdict != tc.want || res.Method != tc.wantMethod {
					t.Fatalf("verdict %q (method %q), want %q (method %q): %s", res.Verdict, res.Method, tc.want, tc.wantMethod, res.Detail)
				}
				if strings.Contains(res.Detail, tc.url[strings.LastIndex(tc.url, "=")+9:]) {
					t.Errorf("the detail quotes the signature: %s", res.Detail)
				}
			})
		}
	}
	// A URL whose names were written in lower case when it was signed (as
	// gcloud does) verifies: the canonical query keeps the names as sent.
	t.Run("signed with lower-case names", func(t *testing.T) {
		u, err := New(hs, &Options{Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		prep, err := u.Prepare(Request{Method: "GET", Bucket: "media", Object: "médias/a.jpg", Expires: time.Hour, Time: at})
		if err != nil {
			t.Fatal(err)
		}
		c := prep.Canonical
		c.Query = nil
		for _, q := range prep.Canonical.Query {
			c.Query = append(c.Query, Param{strings.ToLower(q.Name), q.Value})
		}
		stamp := at.Format(dateTimeFormat)
		alg, err := GOOG4.Algorithm(KindHMAC)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := hs.Sign(context.Background(), prep.Scope, []byte(StringToSign(alg, stamp, prep.Scope, c.String())))
		if err != nil {
			t.Fatal(err)
		}
		raw := "https://storage.googleapis.com" + c.Path + "?" + CanonicalQuery(c.Query) + "&x-goog-signature=" + hex.EncodeToString(sig)
		res := Verify(context.Background(), VerifyRequest{URL: raw, At: at}, keys)
		if res.Verdict != Valid {
			t.Fatalf("verdict %q: %s", res.Verdict, res.Detail)
		}
	})
}
