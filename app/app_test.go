package app

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/s3store"
)

// workerConfig is a worker configuration from env, as the command builds it.
func workerConfig(t *testing.T, env map[string]string, args ...string) *config.Worker {
	t.Helper()
	var w config.Worker
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	w.Register(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &w
}

// The S3-compatible store of a worker comes from its --s3-* settings (and
// their variables) alone: linkissuer's own signing key never serves it.
func TestS3Config(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    *s3store.Config
		wantErr bool
	}{
		{name: "no S3 store", env: map[string]string{"LINKISSUER_HMAC_ACCESS_ID": "gcs-hmac", "LINKISSUER_HMAC_SECRET": "s"}},
		{
			name: "minio",
			env:  map[string]string{"LINKISSUER_S3_REGION": "us-east-1", "LINKISSUER_S3_ENDPOINT": "http://127.0.0.1:9000", "LINKISSUER_S3_ACCESS_ID": "id", "LINKISSUER_S3_SECRET": "s3-secret"},
			want: &s3store.Config{Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", Key: s3store.HMACKey{AccessID: "id", Secret: "s3-secret"}},
		},
		{
			name: "aws with the AWS pair and a style",
			env:  map[string]string{"LINKISSUER_S3_REGION": "eu-west-1", "LINKISSUER_S3_STYLE": "path", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "aws"},
			want: &s3store.Config{Region: "eu-west-1", Style: "path", Key: s3store.HMACKey{AccessID: "AKIA", Secret: "aws"}},
		},
		{name: "the signing key is not the store key", env: map[string]string{"LINKISSUER_S3_REGION": "us-east-1", "LINKISSUER_HMAC_ACCESS_ID": "gcs-hmac", "LINKISSUER_HMAC_SECRET": "s"}, wantErr: true},
		{name: "bad style", env: map[string]string{"LINKISSUER_S3_REGION": "us-east-1", "LINKISSUER_S3_STYLE": "up", "LINKISSUER_S3_ACCESS_ID": "id", "LINKISSUER_S3_SECRET": "s"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := S3Config(&workerConfig(t, tc.env).S3)
			if tc.wantErr {
				if err == nil {
					t.Errorf("S3Config = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("S3Config = %v, want %v", got, tc.want)
			}
		})
	}
}

// NewSigner picks the one signer the credentials name; the HMAC secret
// comes from its file before the variable.
func TestNewSigner(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		env          map[string]string
		wantIdentity string // "" for an error
	}{
		{name: "hmac from the variable", env: map[string]string{"LINKISSUER_HMAC_ACCESS_ID": "GOOG1A", "LINKISSUER_HMAC_SECRET": "s"}, wantIdentity: "GOOG1A"},
		{name: "hmac from the file", env: map[string]string{"LINKISSUER_HMAC_ACCESS_ID": "GOOG1B", "LINKISSUER_HMAC_SECRET_FILE": secretFile}, wantIdentity: "GOOG1B"},
		{name: "hmac without a secret", env: map[string]string{"LINKISSUER_HMAC_ACCESS_ID": "GOOG1C"}},
		{name: "two signers", env: map[string]string{"LINKISSUER_HMAC_ACCESS_ID": "GOOG1D", "LINKISSUER_HMAC_SECRET": "s", "LINKISSUER_KEYLESS": "true"}},
		{name: "none", env: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSigner(t.Context(), &workerConfig(t, tc.env).Cred, nil)
			if tc.wantIdentity == "" {
				if err == nil {
					t.Fatalf("NewSigner = %v, want an error", s.Credential())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Credential().Identity; got != tc.wantIdentity {
				t.Errorf("identity %q, want %q", got, tc.wantIdentity)
			}
		})
	}
}
