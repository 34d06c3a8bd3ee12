package sign

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
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
