// Package idtokentest issues Google-style ID tokens for tests: RS256 JWTs
// signed with a local key, whose public key a local server publishes the
// way https://www.googleapis.com/oauth2/v3/certs does, so that the
// production idtoken validator checks them for real (signature, expiry,
// issuer) without the network.
package idtokentest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
)

// Defaults of Claims.
const (
	// Issuer is the iss of Google-signed ID tokens.
	Issuer = "https://accounts.google.com"
	// Subject is the sub Claims gives: a service account's unique id.
	Subject = "112233445566778899000"
	// KeyID is the kid of the Issuer's published key.
	KeyID = "k1"
)

// TokenIssuer signs ID tokens with Key and publishes Key under KeyID on
// Certs. Both stop with the test.
type TokenIssuer struct {
	Key   *rsa.PrivateKey
	Certs *httptest.Server
}

// New starts a TokenIssuer with a fresh 2048-bit key.
func New(t testing.TB) *TokenIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": KeyID,
		"n": enc(key.N.Bytes()), "e": enc(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	certs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth2/v3/certs" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(certs.Close)
	return &TokenIssuer{Key: key, Certs: certs}
}

// Validator is the production idtoken validator with its certificate
// fetches sent to i.Certs; worker.TokenValidator takes it.
func (i *TokenIssuer) Validator(t testing.TB) *idtoken.Validator {
	t.Helper()
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(&http.Client{Transport: redirect{to: i.Certs.URL}}))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// redirect sends Google's certificate fetches to the local server and
// refuses any other.
type redirect struct{ to string }

func (r redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != "www.googleapis.com" {
		return nil, fmt.Errorf("unexpected fetch of %s", req.URL)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = "http", strings.TrimPrefix(r.to, "http://"), ""
	return http.DefaultTransport.RoundTrip(out)
}

// Claims are a valid token's claims for audience and a verified email,
// issued a minute ago and expiring in an hour; tests change them to make
// a token invalid.
func Claims(audience, email string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": Issuer, "aud": audience, "sub": Subject,
		"email": email, "email_verified": true,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// Token signs claims with i.Key under KeyID.
func (i *TokenIssuer) Token(t testing.TB, claims map[string]any) string {
	t.Helper()
	return Sign(t, i.Key, KeyID, claims)
}

// Sign signs claims as an RS256 JWT with key under kid (another key or
// kid makes a token the validator refuses).
func Sign(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid}) + "." + enc(claims)
	h := crypto.SHA256.New() // linked in: the idtoken validator verifies RS256
	h.Write([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}
