package cli

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

// errNoKeys means the key source has no key for the account: an endpoint
// answered 404 or an empty set. The URL's verdict is then "unknown key".
var errNoKeys = errors.New("no public keys")

// maxKeysBody bounds a public-key endpoint's answer.
const maxKeysBody = 1 << 20

// rsaKey is one public key and its ID, if known.
type rsaKey struct {
	id  string
	pub *rsa.PublicKey
}

func (k rsaKey) describe(source string) string {
	if k.id == "" {
		return source
	}
	return "key " + k.id + " from " + source
}

// keySet is the public keys one source offers.
type keySet struct {
	source string // where they came from, for messages
	// identity is the account the keys belong to, when the source says
	// (a JSON key file).
	identity string
	keys     []rsaKey
}

// loadKeys gets the RSA public keys to verify a URL signed by identity.
func loadKeys(ctx context.Context, ks keySource, identity string) (*keySet, error) {
	switch {
	case ks.keyFile != "":
		return keyFileSet(ks.keyFile)
	case ks.jwkURL != "":
		return fetchKeys(ctx, withEmail(ks.jwkURL, identity), parseJWKSet)
	case ks.certURL != "":
		return fetchKeys(ctx, withEmail(ks.certURL, identity), parseX509Set)
	}
	return fetchKeys(ctx, googleCertsURL+url.PathEscape(identity), parseX509Set)
}

// withEmail appends the escaped email to an endpoint that ends in "/".
func withEmail(endpoint, email string) string {
	if strings.HasSuffix(endpoint, "/") {
		return endpoint + url.PathEscape(email)
	}
	return endpoint
}

// keyFileSet reads a service-account JSON key, or PEM blocks: private keys
// (PKCS #1, PKCS #8), public keys (PKIX, PKCS #1) or certificates.
func keyFileSet(path string) (*keySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	set := &keySet{source: "key file " + path}
	if json.Valid(data) {
		k, err := sign.ParseKey(data, "")
		if err != nil {
			return nil, fmt.Errorf("--key-file %s: %w", path, err)
		}
		set.identity = k.Credential().Identity
		set.keys = []rsaKey{{id: k.KeyID(), pub: k.Public()}}
		return set, nil
	}
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		pub, err := pemPublicKey(block)
		if err != nil {
			return nil, fmt.Errorf("--key-file %s: %s block: %w", path, block.Type, err)
		}
		set.keys = append(set.keys, rsaKey{pub: pub})
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf("--key-file %s: no service-account JSON or PEM block", path)
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

// fetchKeys GETs a public-key endpoint and parses its answer.
func fetchKeys(ctx context.Context, endpoint string, parse func([]byte) ([]rsaKey, error)) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", endpoint, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch the public keys: %w (use --key-file, --cert-url or --iam-endpoint offline)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBody))
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", endpoint, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s answered 404: it knows no such service account", errNoKeys, endpoint)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("public keys %s: HTTP %d", endpoint, resp.StatusCode)
	}
	keys, err := parse(body)
	if err != nil {
		return nil, fmt.Errorf("public keys %s: %w", endpoint, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s has none", errNoKeys, endpoint)
	}
	return &keySet{source: endpoint, keys: keys}, nil
}

// parseX509Set parses {"KEY_ID": "PEM certificate", ...}, the answer of
// Google's .../metadata/x509/EMAIL endpoint.
func parseX509Set(body []byte) ([]rsaKey, error) {
	var certs map[string]string
	if err := json.Unmarshal(body, &certs); err != nil {
		return nil, fmt.Errorf("not an x509 certificate set: %w", err)
	}
	ids := make([]string, 0, len(certs))
	for id := range certs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var keys []rsaKey
	for _, id := range ids {
		block, _ := pem.Decode([]byte(certs[id]))
		if block == nil {
			return nil, fmt.Errorf("key %s: no PEM certificate", id)
		}
		pub, err := pemPublicKey(block)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", id, err)
		}
		keys = append(keys, rsaKey{id: id, pub: pub})
	}
	return keys, nil
}

// parseJWKSet parses {"keys": [{"kty": "RSA", "kid", "n", "e"}, ...]};
// keys of other types are skipped.
func parseJWKSet(body []byte) ([]rsaKey, error) {
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
	var keys []rsaKey
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.N, "="))
		e, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.E, "="))
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("key %s: bad n or e", k.Kid)
		}
		keys = append(keys, rsaKey{id: k.Kid, pub: &rsa.PublicKey{
			N: new(big.Int).SetBytes(n),
			E: int(new(big.Int).SetBytes(e).Int64()),
		}})
	}
	return keys, nil
}
