// Package durable holds durable links: stable https://HOST/l/TOKEN URLs
// that outlive any V4 signature. The token is self-contained and
// authenticated (HMAC-SHA256 under a key from a key file or a Secret
// Manager secret, several keys for rotation, refreshed by a KeyRing), so no
// database is needed; a click verifies it, checks revocation (see package
// revocation: 410 when revoked, 503 while the list cannot be trusted) and
// policy, and redirects to a fresh short-lived signed URL. Durable links
// are created by POST /v1/durable-links (Server) and, for the worker's
// event links, by a Minter; either way each is audited (outcome "minted")
// before it is released.
//
// Token format: base64url (no padding) of
//
//	payload || HMAC-SHA256(key, "linkissuer.durable.v1\x00" || payload)
//
// where payload is the compact JSON of Claims (fields in struct order, so
// serialization is deterministic). The key id inside the payload selects
// the verification key. Tokens are bearer credentials: log Claims.ID only.
package durable

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Version is the token format version.
const Version = 1

// MaxTokenLen bounds an encoded token; longer input is refused before any
// decoding. Object names are at most 1024 bytes, so a real token is well
// under it.
const MaxTokenLen = 4096

const macLen = sha256.Size

var macContext = []byte("linkissuer.durable.v1\x00")

// Typed errors of Parse; callers branch with errors.Is.
var (
	// ErrMalformed: not a token (encoding, length, JSON, version, fields).
	ErrMalformed = errors.New("durable: malformed token")
	// ErrUnknownKey: the token names a key id not in the key set.
	ErrUnknownKey = errors.New("durable: unknown key id")
	// ErrBadMAC: the authenticator does not match (tampered or forged).
	ErrBadMAC = errors.New("durable: token authentication failed")
	// ErrExpired: the durable link's own expiry has passed.
	ErrExpired = errors.New("durable: token expired")
)

// Claims is what a token carries.
type Claims struct {
	V          int    `json:"v"`
	KeyID      string `json:"k"`
	ID         string `json:"i"`
	Bucket     string `json:"b"`
	Object     string `json:"o"`
	Generation int64  `json:"g,omitempty"`
	Method     string `json:"m,omitempty"`
	// Params are response parameters to sign in, sorted by name, each
	// name in ResponseParamNames at most once.
	Params []Param `json:"p,omitempty"`
	// IssuedAt and ExpiresAt are Unix seconds.
	IssuedAt  int64 `json:"iat"`
	ExpiresAt int64 `json:"exp"`
}

// Param is one response parameter.
type Param struct {
	Name  string `json:"n"`
	Value string `json:"v"`
}

// ResponseParamNames are the response parameters a durable link may carry
// (the ones Cloud Storage honours); values are at most MaxParamValue bytes.
var ResponseParamNames = []string{"response-content-disposition", "response-content-type"}

// MaxParamValue bounds a response parameter's value.
const MaxParamValue = 512

// Key is one HMAC key.
type Key struct {
	ID     string `json:"id"`
	Secret []byte `json:"secret"` // base64 in the key file
}

// Keys is a key set: Keys[0] signs, all verify.
type Keys struct {
	list []Key
}

// MinSecretLen is the shortest accepted secret (bytes).
const MinSecretLen = 32

// NewKeys validates keys: at least one, unique non-empty ids, secrets of at
// least MinSecretLen bytes.
func NewKeys(keys []Key) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("durable: no keys")
	}
	seen := map[string]bool{}
	for i, k := range keys {
		switch {
		case k.ID == "" || len(k.ID) > 64:
			return nil, fmt.Errorf("durable: key %d: id must be 1..64 characters", i)
		case seen[k.ID]:
			return nil, fmt.Errorf("durable: key %d: duplicate id %q", i, k.ID)
		case len(k.Secret) < MinSecretLen:
			return nil, fmt.Errorf("durable: key %q: secret is %d bytes, at least %d required", k.ID, len(k.Secret), MinSecretLen)
		}
		seen[k.ID] = true
	}
	return &Keys{list: append([]Key(nil), keys...)}, nil
}

// LoadKeys reads a key file: a JSON list of {"id", "secret" (base64)}; the
// first key signs, every key verifies.
func LoadKeys(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("durable: key file: %w", err)
	}
	var keys []Key
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("durable: key file %s: %w", path, err)
	}
	k, err := NewKeys(keys)
	if err != nil {
		return nil, fmt.Errorf("%w (key file %s)", err, path)
	}
	return k, nil
}

func (ks *Keys) find(id string) (Key, bool) {
	for _, k := range ks.list {
		if hmac.Equal([]byte(k.ID), []byte(id)) {
			return k, true
		}
	}
	return Key{}, false
}

func mac(secret, payload []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(macContext)
	h.Write(payload)
	return h.Sum(nil)
}

// NewID returns a random 128-bit token id (hex).
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Mint encodes c under the signing key, filling V and KeyID.
func (ks *Keys) Mint(c Claims) (string, error) {
	k := ks.list[0]
	c.V, c.KeyID = Version, k.ID
	if err := c.valid(); err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	raw := append(payload, mac(k.Secret, payload)...)
	tok := base64.RawURLEncoding.EncodeToString(raw)
	if len(tok) > MaxTokenLen {
		return "", fmt.Errorf("durable: token of %d bytes exceeds %d", len(tok), MaxTokenLen)
	}
	return tok, nil
}

func (c Claims) valid() error {
	switch {
	case c.V != Version:
		return fmt.Errorf("%w: version %d", ErrMalformed, c.V)
	case len(c.ID) < 24 || len(c.ID) > 32:
		return fmt.Errorf("%w: id", ErrMalformed)
	case c.Bucket == "" || c.Object == "":
		return fmt.Errorf("%w: bucket and object are required", ErrMalformed)
	case c.Generation < 0:
		return fmt.Errorf("%w: negative generation", ErrMalformed)
	case c.ExpiresAt <= c.IssuedAt:
		return fmt.Errorf("%w: expiry not after issue", ErrMalformed)
	}
	for i, p := range c.Params {
		switch {
		case !slices.Contains(ResponseParamNames, p.Name):
			return fmt.Errorf("%w: response parameter %.64q not allowed", ErrMalformed, p.Name)
		case len(p.Value) > MaxParamValue:
			return fmt.Errorf("%w: response parameter %s over %d bytes", ErrMalformed, p.Name, MaxParamValue)
		case i > 0 && c.Params[i-1].Name >= p.Name:
			return fmt.Errorf("%w: response parameters not sorted and unique", ErrMalformed)
		}
	}
	return nil
}

// Parse authenticates tok and returns its claims. It is linear in len(tok)
// and refuses tokens over MaxTokenLen. Errors match ErrMalformed,
// ErrUnknownKey, ErrBadMAC or ErrExpired; the MAC is checked (in constant
// time) before the payload is decoded as JSON, and expiry after.
func (ks *Keys) Parse(tok string, now time.Time) (Claims, error) {
	if len(tok) == 0 || len(tok) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: length %d", ErrMalformed, len(tok))
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) <= macLen {
		return Claims{}, fmt.Errorf("%w: encoding", ErrMalformed)
	}
	payload, sum := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	// The key id must be read before the MAC can be checked; a minimal
	// decode of the key id only.
	var head struct {
		KeyID string `json:"k"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		return Claims{}, fmt.Errorf("%w: payload", ErrMalformed)
	}
	k, ok := ks.find(head.KeyID)
	if !ok {
		return Claims{}, ErrUnknownKey
	}
	if !hmac.Equal(sum, mac(k.Secret, payload)) {
		return Claims{}, ErrBadMAC
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: payload", ErrMalformed)
	}
	if err := c.valid(); err != nil {
		return Claims{}, err
	}
	if !now.Before(time.Unix(c.ExpiresAt, 0)) {
		return c, ErrExpired
	}
	return c, nil
}
