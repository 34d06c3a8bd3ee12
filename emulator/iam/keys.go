package iam

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// KeyFile is what the emulator takes from a service-account JSON key file.
type KeyFile struct {
	Email string
	KeyID string
	Key   *rsa.PrivateKey
}

// ReadKeyFile reads a service-account JSON key file (type service_account,
// with private_key, private_key_id and client_email).
func ReadKeyFile(path string) (*KeyFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// ParseKeyFile parses the contents of a service-account JSON key file.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	var f struct {
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
		ClientEmail  string `json:"client_email"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a service-account JSON key file: %w", err)
	}
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil {
		return nil, errors.New("no PEM private_key in the key file")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else {
		pk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("private_key is neither PKCS#1 nor PKCS#8")
		}
		var ok bool
		if key, ok = pk.(*rsa.PrivateKey); !ok {
			return nil, fmt.Errorf("private_key is a %T, not RSA", pk)
		}
	}
	return &KeyFile{Email: f.ClientEmail, KeyID: f.PrivateKeyID, Key: key}, nil
}

// keyIDFor derives a key ID from the public key, the way Google's look:
// 40 hex digits.
func keyIDFor(pub *rsa.PublicKey) string {
	sum := sha1.Sum(x509.MarshalPKCS1PublicKey(pub))
	return hex.EncodeToString(sum[:])
}

// selfSignedCert wraps the public key in an X.509 certificate, as
// Google's x509 metadata endpoint serves it.
func selfSignedCert(key *rsa.PrivateKey, email string, now time.Time) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes([]byte(keyIDFor(&key.PublicKey))[:16]),
		Subject:               pkix.Name{CommonName: email},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// jwk is one RSA JSON Web Key.
type jwk struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func jwkFor(pub *rsa.PublicKey, kid string) jwk {
	return jwk{
		Kty: "RSA", Alg: "RS256", Use: "sig", Kid: kid,
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// PublicKeyPEM renders pub as a PKIX "PUBLIC KEY" PEM block.
func PublicKeyPEM(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "" // cannot happen for an RSA key
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
