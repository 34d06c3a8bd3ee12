package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

func TestCheck(t *testing.T) {
	p, err := New(Config{
		Allow:          []string{"media/public/**", "exports-*", "logs/2026-*/*.gz"},
		Methods:        []string{"GET", "head"},
		DefaultExpiry:  10 * time.Minute,
		MaxExpiry:      2 * time.Hour,
		ContentTypes:   []string{"image/*", "application/pdf", "application/gzip", ""},
		ResponseParams: []sign.Param{{Name: "response-content-disposition", Value: "attachment"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		req      Request
		wantCode string
		wantExp  time.Duration
	}{
		{"allowed prefix, default expiry", Request{Bucket: "media", Object: "public/a/b.png", ContentType: "image/png"}, "", 10 * time.Minute},
		{"bucket glob allows everything", Request{Bucket: "exports-eu", Object: "x/y/z.pdf", ContentType: "application/pdf", Expires: time.Hour}, "", time.Hour},
		{"single-segment star", Request{Bucket: "logs", Object: "2026-11/app.gz", ContentType: "application/gzip"}, "", 10 * time.Minute},
		{"star does not cross slash", Request{Bucket: "logs", Object: "2026-11/deep/app.gz", ContentType: "application/gzip"}, CodeObjectNotAllowed, 0},
		{"other prefix", Request{Bucket: "media", Object: "private/a.png", ContentType: "image/png"}, CodeObjectNotAllowed, 0},
		{"unknown bucket", Request{Bucket: "secrets", Object: "a"}, CodeBucketNotAllowed, 0},
		{"method", Request{Bucket: "media", Object: "public/a.png", Method: "PUT", ContentType: "image/png"}, CodeMethodNotAllowed, 0},
		{"head allowed case-insensitively", Request{Bucket: "media", Object: "public/a.png", Method: "HEAD", ContentType: "image/png"}, "", 10 * time.Minute},
		{"expiry above max", Request{Bucket: "media", Object: "public/a.png", Expires: 3 * time.Hour, ContentType: "image/png"}, CodeExpiryOutOfRange, 0},
		{"content type", Request{Bucket: "media", Object: "public/a.exe", ContentType: "application/x-msdownload"}, CodeContentType, 0},
		{"control characters", Request{Bucket: "media", Object: "public/a\x07.png", ContentType: "image/png"}, CodeInvalidObjectName, 0},
		{"C1 control characters", Request{Bucket: "media", Object: "public/a\u0085.png", ContentType: "image/png"}, CodeInvalidObjectName, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := p.Check(tc.req)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if g.Expires != tc.wantExp {
					t.Errorf("expires %s, want %s", g.Expires, tc.wantExp)
				}
				if len(g.Query) != 1 || g.Query[0].Value != "attachment" {
					t.Errorf("response params not granted: %v", g.Query)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || r.Code != tc.wantCode {
				t.Fatalf("got %v, want refusal %s", err, tc.wantCode)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, c := range map[string]Config{
		"max above 7d":     {MaxExpiry: 8 * 24 * time.Hour},
		"default over max": {DefaultExpiry: 2 * time.Hour, MaxExpiry: time.Hour},
		"unknown method":   {Methods: []string{"PATCH"}},
		"rule w/o bucket":  {Allow: []string{"/prefix"}},
		"unterminated [":   {Allow: []string{"media/[ab"}},
		"bad content type": {ContentTypes: []string{"image/{png"}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEmptyAllowListAllowsNothing(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Check(Request{Bucket: "any", Object: "thing"}); err == nil {
		t.Fatal("empty allow list allowed a request")
	}
}

// Patterns match characters, not bytes: "médias/**" grants "médias/a.jpg"
// and refuses the mis-decoded "mÃ©dias/a.jpg" (each byte of "é" read as a
// Latin-1 character), which the byte-wise glob of old did the other way round.
func TestNonASCIIPatterns(t *testing.T) {
	p, err := New(Config{Allow: []string{"media/médias/**", "media/?.txt", "bücher/*"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		bucket   string
		object   string
		wantCode string
	}{
		{name: "accented prefix", bucket: "media", object: "médias/a.jpg"},
		{name: "mis-decoded prefix", bucket: "media", object: "mÃ©dias/a.jpg", wantCode: CodeObjectNotAllowed},
		{name: "unaccented prefix", bucket: "media", object: "medias/a.jpg", wantCode: CodeObjectNotAllowed},
		{name: "question mark is one character", bucket: "media", object: "é.txt"},
		{name: "accented bucket pattern", bucket: "bücher", object: "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Check(Request{Bucket: tc.bucket, Object: tc.object})
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || r.Code != tc.wantCode {
				t.Fatalf("got %v, want refusal %s", err, tc.wantCode)
			}
		})
	}
}
