// Package keys loads the RSA public keys that verify V4 signed URLs: from a
// key file (service-account JSON, PEM keys or certificates), from an x509
// certificate endpoint such as Google's per-account one, or from a JWK set.
// It is the I/O half of verification; sign.Verify is the pure half.
package keys

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/linkissuer/linkissuer/sign"
)

// GoogleCertsURL is where Google publishes the certificates of a service
// account's Google-managed and user-managed keys; the account's email is
// appended.
const GoogleCertsURL = "https://www.googleapis.com/service_accounts/v1/metadata/x509/"

// maxKeysBody bounds a public-key endpoint's answer.
const maxKeysBody = 1 << 20

// Source says where the public keys come from. At most one field is set;
// none means Google's certificates of the URL's account (GoogleCertsURL).
// A CertURL or JWKURL ending in "/" gets the account's email appended.
type Source struct {
	File    string
	CertURL string
	JWKURL  string
	// Client fetches the endpoints (http.DefaultClient when nil); the
	// caller's context bounds each fetch.
	Client *http.Client
}

// Load returns the keys that may have signed for identity. Its signature
// fits sign.VerifyKeys.RSA. An endpoint that knows no such account (404, or
// an empty set) gives an error wrapping sign.ErrNoKeys.
func (s Source) Load(ctx context.Context, identity string) (*sign.KeySet, error) {
	switch {
	case s.File != "":
		return FromFile(s.File)
	case s.JWKURL != "":
		return s.fetch(ctx, WithEmail(s.JWKURL, identity), ParseJWKSet)
	case s.CertURL != "":
		return s.fetch(ctx, WithEmail(s.CertURL, identity), ParseX509Set)
	}
	return s.fetch(ctx, GoogleCertsURL+url.PathEscape(identity), ParseX509Set)
}

// WithEmail appends the escaped email to an endpoint that ends in "/".
func WithEmail(endpoint, email string) string {
	if strings.HasSuffix(endpoint, "/") {
		return endpoint + url.PathEscape(email)
	}
	return endpoint
}

// FromFile reads a service-account JSON key, or PEM blocks: private keys
// (PKCS #1, PKCS #8), public keys (PKIX, PKCS #1) or certificates.
func FromFile(path string) (*sign.KeySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	set, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	set.Source = "key file " + path
	return set, nil
}

// Parse reads a service-account JSON key or PEM blocks (see FromFile).
func Parse(data []byte) (*sign.KeySet, error) {
	set := &sign.KeySet{}
	if json.Valid(data) {
		k, err := sign.ParseKey(data, "")
		if err != nil {
			return nil, err
		}
		set.Identity = k.Credential().Identity
		set.Keys = []sign.PublicKey{{ID: k.KeyID(), Key: k.Public()}}
		return set, nil
	}
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		pub, err := pemPublicKey(block)
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		set.Keys = append(set.Keys, sign.PublicKey{Key: pub})
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("no service-account JSON or PEM block")
	}
	return set, nil
}

// pemPublicKey returns the RSA public key in (or of) a PEM block.
func pemPublicKey(b *pem.Block) (*rsa.PublicKey, error) {
	var key any
	var err error
	switch b.Type {
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			key = c.PublicKey
		}
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "RSA PRIVATE KEY":
		var k *rsa.PrivateKey
		if k, err = x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			key = &k.PublicKey
		}
	case "PRIVATE KEY":
		var k any
		if k, err = x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			if rk, ok := k.(*rsa.PrivateKey); ok {
				key = &rk.PublicKey
			} else {
				key = k
			}
		}
	default:
		return nil, errors.New("unsupported PEM type")
	}
	if err != nil {
		return nil, err
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an RSA key", key)
	}
	return pub, nil
}

// fetch GETs a public-key endpoint and parses its answer.
func (s Source) fetch(ctx context.Context, endpoint string, parse func([]byte) ([]sign.PublicKey, error)) (*sign.KeySet, error) {
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", endpoint, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch the public keys: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBody))
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", endpoint, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s answered 404: it knows no such service account", sign.ErrNoKeys, endpoint)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("public keys %s: HTTP %d", endpoint, resp.StatusCode)
	}
	keys, err := parse(body)
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", endpoint, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s has none", sign.ErrNoKeys, endpoint)
	}
	return &sign.KeySet{Source: endpoint, Keys: keys}, nil
}

// ParseX509Set parses {"KEY_ID": "PEM certificate", ...}, the answer of
// Google's .../metadata/x509/EMAIL endpoint.
func ParseX509Set(body []byte) ([]sign.PublicKey, error) {
	var certs map[string]string
	if err := json.Unmarshal(body, &certs); err != nil {
		return nil, fmt.Errorf("not an x509 certificate set: %w", err)
	}
	ids := make([]string, 0, len(certs))
	for id := range certs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var keys []sign.PublicKey
	for _, id := range ids {
		block, _ := pem.Decode([]byte(certs[id]))
		if block == nil {
			return nil, fmt.Errorf("key %s: no PEM certificate", id)
		}
		pub, err := pemPublicKey(block)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", id, err)
		}
		keys = append(keys, sign.PublicKey{ID: id, Key: pub})
	}
	return keys, nil
}

// ParseJWKSet parses {"keys": [{"kty": "RSA", "kid", "n", "e"}, ...]};
// keys of other types are skipped.
func ParseJWKSet(body []byte) ([]sign.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	var keys []sign.PublicKey
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.N, "="))
		e, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.E, "="))
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("key %s: bad n or e", k.Kid)
		}
		keys = append(keys, sign.PublicKey{ID: k.Kid, Key: &rsa.PublicKey{
			N: new(big.Int).SetBytes(n),
			E: int(new(big.Int).SetBytes(e).Int64()),
		}})
	}
	return keys, nil
}
