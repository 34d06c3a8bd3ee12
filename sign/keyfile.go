package sign

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// KeySigner signs with a service-account RSA private key held in memory. The
// key is parsed and its CRT values precomputed once, so each signature costs
// one RSA operation.
type KeySigner struct {
	email string
	keyID string
	key   *rsa.PrivateKey
}

// NewKeySigner returns a signer for key that puts email in the credential.
func NewKeySigner(email string, key *rsa.PrivateKey) (*KeySigner, error) {
	if email == "" {
		return nil, &InputError{Field: "key", Reason: "no service-account email for the key"}
	}
	if err := key.Validate(); err != nil {
		return nil, &InputError{Field: "key", Reason: err.Error()}
	}
	key.Precompute()
	return &KeySigner{email: email, key: key}, nil
}

// ParseKey reads a service-account JSON key file, or a PEM block (PKCS#1 or
// PKCS#8) for which email must be given. A non-empty email overrides the
// JSON file's client_email.
func ParseKey(data []byte, email string) (*KeySigner, error) {
	var sa struct {
		Type         string `json:"type"`
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
		ClientEmail  string `json:"client_email"`
	}
	pemData := data
	keyID := ""
	if json.Valid(data) {
		if err := json.Unmarshal(data, &sa); err != nil {
			return nil, &InputError{Field: "key", Reason: "reading JSON key file: " + err.Error()}
		}
		if sa.PrivateKey == "" {
			return nil, &InputError{Field: "key", Reason: fmt.Sprintf("JSON key file (type %q) has no private_key", sa.Type)}
		}
		pemData = []byte(sa.PrivateKey)
		keyID = sa.PrivateKeyID
		if email == "" {
			email = sa.ClientEmail
		}
	}
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, &InputError{Field: "key", Reason: "no PEM block or service-account JSON found"}
	}
	key, err := parseRSA(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, err := NewKeySigner(email, key)
	if err != nil {
		return nil, err
	}
	s.keyID = keyID
	return s, nil
}

// LoadKeyFile reads and parses a key file (see ParseKey).
func LoadKeyFile(path, email string) (*KeySigner, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &InputError{Field: "key", Reason: err.Error()}
	}
	s, err := ParseKey(data, email)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return s, nil
}

func parseRSA(der []byte) (*rsa.PrivateKey, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, &InputError{Field: "key", Reason: "not a PKCS#1 or PKCS#8 private key"}
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, &InputError{Field: "key", Reason: fmt.Sprintf("%T is not an RSA key", k)}
	}
	return rk, nil
}

// Credential implements Signer.
func (s *KeySigner) Credential() Credential {
	return Credential{Identity: s.email, Kind: KindRSA}
}

// KeyID is the private_key_id of a JSON key file, if known.
func (s *KeySigner) KeyID() string { return s.keyID }

// Public returns the public half of the key.
func (s *KeySigner) Public() *rsa.PublicKey { return &s.key.PublicKey }

// Sign implements Signer: RSASSA-PKCS1-v1_5 over SHA-256 of stringToSign.
func (s *KeySigner) Sign(ctx context.Context, _ Scope, stringToSign []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(stringToSign)
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return nil, errors.New("rsa signing failed: " + err.Error())
	}
	return sig, nil
}
