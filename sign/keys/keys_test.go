package keys

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/internal/vectors"
	"github.com/linkissuer/linkissuer/sign"
)

func TestWithEmail(t *testing.T) {
	tests := []struct{ name, endpoint, email, want string }{
		{name: "appended and escaped", endpoint: "http://h/x509/", email: "a b@c", want: "http://h/x509/a%20b@c"},
		{name: "full URL kept", endpoint: "http://h/x509/full", email: "a@c", want: "http://h/x509/full"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := WithEmail(tc.endpoint, tc.email); got != tc.want {
				t.Errorf("WithEmail(%q, %q) = %q, want %q", tc.endpoint, tc.email, got, tc.want)
			}
		})
	}
}

// Every key-file form yields the same public key; only the JSON key names
// its account.
func TestFromFile(t *testing.T) {
	sa, err := sign.ParseKey(vectors.Read(t, vectors.DummyKey), "")
	if err != nil {
		t.Fatal(err)
	}
	pub := sa.Public()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name     string
		path     string
		identity string
		keyID    string
		wantErr  bool
	}{
		{name: "service-account JSON", path: vectors.Path(vectors.DummyKey), identity: sa.Credential().Identity, keyID: sa.KeyID()},
		{name: "PEM public key", path: write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
		{name: "PKCS #1 public key", path: write("pub1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}))},
		{name: "no key", path: write("empty.txt", []byte("nothing here")), wantErr: true},
		{name: "unknown PEM type", path: write("other.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}})), wantErr: true},
		{name: "missing file", path: filepath.Join(dir, "nope.json"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := FromFile(tc.path)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("FromFile = %+v, want an error", set)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 1 || !set.Keys[0].Key.Equal(pub) {
				t.Fatalf("keys = %+v, want the dummy key", set.Keys)
			}
			if set.Identity != tc.identity || set.Keys[0].ID != tc.keyID {
				t.Errorf("identity %q, key ID %q; want %q, %q", set.Identity, set.Keys[0].ID, tc.identity, tc.keyID)
			}
		})
	}
}

// The x509 and JWK endpoints of the IAM Credentials emulator (the same
// shapes as Google's) give the key that signs; an account they do not know
// is ErrNoKeys, an endpoint that does not answer is another error.
func TestSourceLoadFromEndpoints(t *testing.T) {
	key := iamtest.Key()
	emu := iamtest.Start(t, emulator.Options{Key: key, Email: "signer@p.iam.gserviceaccount.com", KeyID: "k1"})
	x509Base := emu.URL() + "/service_accounts/v1/metadata/x509/"
	jwkBase := emu.URL() + "/service_accounts/v1/metadata/jwk/"
	tests := []struct {
		name      string
		src       Source
		identity  string
		wantKey   bool
		wantNoKey bool
	}{
		{name: "x509 with email appended", src: Source{CertURL: x509Base}, identity: "signer@p.iam.gserviceaccount.com", wantKey: true},
		{name: "jwk with email appended", src: Source{JWKURL: jwkBase}, identity: "signer@p.iam.gserviceaccount.com", wantKey: true},
		{name: "unknown account", src: Source{CertURL: x509Base}, identity: "nobody@p.iam.gserviceaccount.com", wantNoKey: true},
		{name: "endpoint down", src: Source{CertURL: "http://127.0.0.1:1/x509/"}, identity: "signer@p.iam.gserviceaccount.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			set, err := tc.src.Load(ctx, tc.identity)
			switch {
			case tc.wantKey:
				if err != nil {
					t.Fatal(err)
				}
				if len(set.Keys) != 1 || set.Keys[0].ID != "k1" || !set.Keys[0].Key.Equal(&key.PublicKey) {
					t.Errorf("keys = %+v, want k1", set.Keys)
				}
			case tc.wantNoKey:
				if !errors.Is(err, sign.ErrNoKeys) {
					t.Errorf("err = %v, want ErrNoKeys", err)
				}
			default:
				if err == nil || errors.Is(err, sign.ErrNoKeys) {
					t.Errorf("err = %v, want a fetch error that is not ErrNoKeys", err)
				}
			}
		})
	}
}

func TestParseSetsRejectGarbage(t *testing.T) {
	if _, err := ParseX509Set([]byte(`{"k": "not pem"}`)); err == nil {
		t.Error("ParseX509Set accepted a value that is not PEM")
	}
	if _, err := ParseJWKSet([]byte(`{"keys": [{"kty": "RSA", "kid": "k", "n": "!!", "e": "AQAB"}]}`)); err == nil {
		t.Error("ParseJWKSet accepted a bad modulus")
	}
	keys, err := ParseJWKSet([]byte(`{"keys": [{"kty": "EC", "kid": "e"}]}`))
	if err != nil || len(keys) != 0 {
		t.Errorf("ParseJWKSet skipped nothing: %v, %v", keys, err)
	}
}
