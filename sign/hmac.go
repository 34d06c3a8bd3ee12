package sign

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
	"sync/atomic"
)

// HMACSigner signs with an HMAC key: a GCS HMAC key (GOOG4-HMAC-SHA256 or,
// in interoperability mode, AWS4-HMAC-SHA256) or an S3 access key. The
// per-scope signing key is derived once per day and region and cached.
type HMACSigner struct {
	accessID string
	secret   []byte

	mu   sync.Mutex
	keys map[Scope]*scopedMAC
	last atomic.Pointer[scopedMAC]
}

// scopedMAC pools keyed HMAC states for one scope: Reset on a keyed
// crypto/hmac state restores the precomputed inner pad, so a signature costs
// two SHA-256 passes and no allocation but the result.
type scopedMAC struct {
	scope Scope
	pool  sync.Pool
}

// NewHMACSigner returns a signer for the access ID and secret.
func NewHMACSigner(accessID, secret string) (*HMACSigner, error) {
	if accessID == "" {
		return nil, &InputError{Field: "hmac", Reason: "missing access ID"}
	}
	if secret == "" {
		return nil, &InputError{Field: "hmac", Reason: "missing secret"}
	}
	return &HMACSigner{accessID: accessID, secret: []byte(secret), keys: make(map[Scope]*scopedMAC)}, nil
}

// Credential implements Signer.
func (s *HMACSigner) Credential() Credential {
	return Credential{Identity: s.accessID, Kind: KindHMAC}
}

// Sign implements Signer: HMAC-SHA256(signingKey(scope), stringToSign).
func (s *HMACSigner) Sign(ctx context.Context, scope Scope, stringToSign []byte) ([]byte, error) {
	return s.AppendSign(ctx, make([]byte, 0, sha256.Size), scope, stringToSign)
}

// AppendSign implements AppendSigner: Sign, appended to dst.
func (s *HMACSigner) AppendSign(ctx context.Context, dst []byte, scope Scope, stringToSign []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sm := s.last.Load()
	if sm == nil || sm.scope != scope {
		sm = s.scoped(scope)
		s.last.Store(sm)
	}
	mac := sm.pool.Get().(hash.Hash)
	mac.Reset()
	mac.Write(stringToSign)
	dst = mac.Sum(dst)
	sm.pool.Put(mac)
	return dst, nil
}

func (s *HMACSigner) scoped(scope Scope) *scopedMAC {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sm, ok := s.keys[scope]; ok {
		return sm
	}
	if len(s.keys) > 64 {
		clear(s.keys)
	}
	key := DeriveHMACKey(scope, s.secret)
	sm := &scopedMAC{scope: scope}
	sm.pool.New = func() any { return hmac.New(sha256.New, key) }
	s.keys[scope] = sm
	return sm
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
