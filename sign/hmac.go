package sign

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"sync"
)

// HMACSigner signs with an HMAC key: a GCS HMAC key (GOOG4-HMAC-SHA256 or,
// in interoperability mode, AWS4-HMAC-SHA256) or an S3 access key. The
// per-scope signing key is derived once per day and region and cached.
type HMACSigner struct {
	accessID string
	secret   []byte

	mu   sync.Mutex
	keys map[Scope][]byte
}

// NewHMACSigner returns a signer for the access ID and secret.
func NewHMACSigner(accessID, secret string) (*HMACSigner, error) {
	if accessID == "" {
		return nil, &InputError{Field: "hmac", Reason: "missing access ID"}
	}
	if secret == "" {
		return nil, &InputError{Field: "hmac", Reason: "missing secret"}
	}
	return &HMACSigner{accessID: accessID, secret: []byte(secret), keys: make(map[Scope][]byte)}, nil
}

// Credential implements Signer.
func (s *HMACSigner) Credential() Credential {
	return Credential{Identity: s.accessID, Kind: KindHMAC}
}

// Sign implements Signer: HMAC-SHA256(signingKey(scope), stringToSign).
func (s *HMACSigner) Sign(ctx context.Context, scope Scope, stringToSign []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, s.signingKey(scope))
	mac.Write(stringToSign)
	return mac.Sum(nil), nil
}

// signingKey derives HMAC(HMAC(HMAC(HMAC(PREFIX+secret, date), region),
// service), terminator), caching it per scope.
func (s *HMACSigner) signingKey(scope Scope) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[scope]; ok {
		return k
	}
	if len(s.keys) > 64 { // a few days x regions; never grows without bound
		clear(s.keys)
	}
	k := DeriveHMACKey(scope, s.secret)
	s.keys[scope] = k
	return k
}

// DeriveHMACKey computes the V4 signing key for scope from a secret.
func DeriveHMACKey(scope Scope, secret []byte) []byte {
	prefix := "GOOG4"
	if scope.Dialect == AWS4 {
		prefix = "AWS4"
	}
	k := hmacSum(append([]byte(prefix), secret...), scope.Date)
	k = hmacSum(k, scope.Region)
	k = hmacSum(k, scope.Service())
	return hmacSum(k, scope.Terminator())
}

func hmacSum(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}
