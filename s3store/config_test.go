package s3store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkissuer/linkissuer/sign"
)

var testKey = HMACKey{AccessID: "AKIAIOSFODNN7EXAMPLE", Secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // "" means valid
	}{
		{name: "aws", cfg: Config{Region: "eu-west-1", Key: testKey}},
		{name: "minio", cfg: Config{Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", Key: testKey}},
		{name: "endpoint without scheme", cfg: Config{Endpoint: "gateway.storjshare.io", Region: "us-east-1", Key: testKey}},
		{name: "trailing slash", cfg: Config{Endpoint: "https://storage.googleapis.com/", Region: "us-east-1", Key: testKey}},
		{name: "no region", cfg: Config{Key: testKey}, field: "region"},
		{name: "auto region", cfg: Config{Endpoint: "https://x.r2.cloudflarestorage.com", Region: "auto", Key: testKey}, field: "region"},
		{name: "endpoint with path", cfg: Config{Endpoint: "https://example.com/s3", Region: "us-east-1", Key: testKey}, field: "endpoint"},
		{name: "endpoint with query", cfg: Config{Endpoint: "https://example.com?x=1", Region: "us-east-1", Key: testKey}, field: "endpoint"},
		{name: "endpoint with user", cfg: Config{Endpoint: "https://me@example.com", Region: "us-east-1", Key: testKey}, field: "endpoint"},
		{name: "ftp endpoint", cfg: Config{Endpoint: "ftp://example.com", Region: "us-east-1", Key: testKey}, field: "endpoint"},
		{name: "bad style", cfg: Config{Region: "us-east-1", Style: "sideways", Key: testKey}, field: "style"},
		{name: "bound style", cfg: Config{Region: "us-east-1", Style: "bound", Key: testKey}, field: "style"},
		{name: "no secret", cfg: Config{Region: "us-east-1", Key: HMACKey{AccessID: "id"}}, field: "hmac"},
		{name: "no access ID", cfg: Config{Region: "us-east-1", Key: HMACKey{Secret: "s"}}, field: "hmac"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.cfg
			err := tc.cfg.Validate()
			if tc.cfg != before {
				t.Errorf("Validate modified the config")
			}
			var ie *sign.InputError
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.field != "" && !errors.As(err, &ie):
				t.Errorf("Validate = %v, want an InputError for %s", err, tc.field)
			case tc.field != "" && ie.Field != tc.field:
				t.Errorf("Validate names field %q (%v), want %q", ie.Field, err, tc.field)
			}
		})
	}
}

// TestStoreURLs pins the URL each kind of store gets: host, style and
// scope, for one presigned GET.
func TestStoreURLs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // URL up to the query
	}{
		{"aws us-east-1", Config{Region: "us-east-1"}, "https://media.s3.amazonaws.com/a/b%20c.txt"},
		{"aws regional", Config{Region: "eu-west-1"}, "https://media.s3.eu-west-1.amazonaws.com/a/b%20c.txt"},
		{"aws path style", Config{Region: "eu-west-1", Style: "path"}, "https://s3.eu-west-1.amazonaws.com/media/a/b%20c.txt"},
		{"minio", Config{Endpoint: "http://127.0.0.1:9000", Region: "us-east-1"}, "http://127.0.0.1:9000/media/a/b%20c.txt"},
		{"localstack", Config{Endpoint: "http://localhost:4566", Region: "us-east-1"}, "http://localhost:4566/media/a/b%20c.txt"},
		{"r2", Config{Endpoint: "https://acct.r2.cloudflarestorage.com", Region: "us-east-1"}, "https://acct.r2.cloudflarestorage.com/media/a/b%20c.txt"},
		{"storj", Config{Endpoint: "gateway.storjshare.io", Region: "us-east-1"}, "https://gateway.storjshare.io/media/a/b%20c.txt"},
		{"storj virtual", Config{Endpoint: "https://gateway.storjshare.io", Region: "us-east-1", Style: "virtual"}, "https://media.gateway.storjshare.io/a/b%20c.txt"},
		{"gcs interop", Config{Endpoint: "https://storage.googleapis.com", Region: "us-east-1"}, "https://storage.googleapis.com/media/a/b%20c.txt"},
		{"gcs interop virtual", Config{Endpoint: "https://storage.googleapis.com", Region: "us-east-1", Style: "virtual"}, "https://media.storage.googleapis.com/a/b%20c.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Key = testKey
			u, err := tc.cfg.URLSigner()
			if err != nil {
				t.Fatal(err)
			}
			got, err := u.Sign(t.Context(), sign.Request{Method: "GET", Bucket: "media", Object: "a/b c.txt", Expires: 3600e9, Time: testTime})
			if err != nil {
				t.Fatal(err)
			}
			base, query, _ := strings.Cut(got.URL, "?")
			if base != tc.want {
				t.Errorf("URL = %s\nwant  %s", base, tc.want)
			}
			scope := fmt.Sprintf("X-Amz-Credential=%s%%2F20190201%%2F%s%%2Fs3%%2Faws4_request", testKey.AccessID, tc.cfg.Region)
			if !strings.Contains(query, "X-Amz-Algorithm=AWS4-HMAC-SHA256") || !strings.Contains(query, scope) {
				t.Errorf("query %s lacks the AWS4 algorithm or %s", query, scope)
			}
			p, err := sign.ParseSignedURL(got.URL, "GET", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.VerifyHMAC([]byte(testKey.Secret)); err != nil {
				t.Errorf("VerifyHMAC: %v", err)
			}
		})
	}
}

func TestHMACKeyHidesSecret(t *testing.T) {
	c := Config{Region: "us-east-1", Key: testKey}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.Key.String()} {
		if strings.Contains(s, testKey.Secret) {
			t.Errorf("formatted config shows the secret: %s", s)
		}
		if !strings.Contains(s, testKey.AccessID) {
			t.Errorf("formatted config lacks the access ID: %s", s)
		}
	}
}

func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                         string
		accessID, secretFile, secret string
		want                         HMACKey
		wantErr                      bool
	}{
		{name: "id and file", accessID: "id", secretFile: secretFile, want: HMACKey{"id", "file-secret"}},
		{name: "id and secret", accessID: "id", secret: "env-secret", want: HMACKey{"id", "env-secret"}},
		{name: "file wins over secret", accessID: "id", secretFile: secretFile, secret: "env-secret", want: HMACKey{"id", "file-secret"}},
		{name: "id without secret", accessID: "id", wantErr: true},
		{name: "secret without id", secret: "s", wantErr: true},
		{name: "missing file", accessID: "id", secretFile: filepath.Join(dir, "nope"), wantErr: true},
		{name: "empty file", accessID: "id", secretFile: emptyFile, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadKey(tc.accessID, tc.secretFile, tc.secret)
			if tc.wantErr {
				if err == nil {
					t.Errorf("ReadKey = %v, want an error", got)
				}
				if err != nil && strings.Contains(err.Error(), "secret\n") {
					t.Errorf("error shows file contents: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ReadKey = %v (secret %q), %v; want %v (secret %q)", got, got.Secret, err, tc.want, tc.want.Secret)
			}
		})
	}
}
