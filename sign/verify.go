package sign

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Verification verdicts, matched with errors.Is.
var (
	ErrTampered    = errors.New("signature does not match: the URL was altered or signed with another key")
	ErrExpired     = errors.New("expired")
	ErrNotYetValid = errors.New("not yet valid")
	ErrMalformed   = errors.New("not a V4 signed URL")
)

// ParsedURL is a V4 signed URL taken apart, with the canonical request and
// string-to-sign rebuilt from it by the same code that signs.
type ParsedURL struct {
	Dialect   Dialect
	Algorithm string
	// Identity is the credential's service-account email or access ID.
	Identity      string
	Scope         Scope
	SignedHeaders []string
	Date          time.Time
	Expires       time.Duration
	Signature     []byte
	Bucket        string // when the URL is path-style
	Object        string // the path after the bucket (path style) or the whole path
	Canonical     CanonicalRequest
	StringToSign  string
}

// ExpiresAt is when the URL stops working.
func (p *ParsedURL) ExpiresAt() time.Time { return p.Date.Add(p.Expires) }

// ParseSignedURL decodes a V4 signed URL. method is the HTTP method the URL
// will be used with (GET if empty); headers are the ones the client will
// send besides host (needed when the URL signs more than host).
func ParseSignedURL(raw, method string, headers []Header) (*ParsedURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if method == "" {
		method = "GET"
	}
	p := &ParsedURL{}
	var query []Param
	var sigHex string
	for _, part := range strings.Split(u.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err1 := url.PathUnescape(k)
		value, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: bad escape in query parameter %q", ErrMalformed, k)
		}
		switch name {
		case "X-Goog-Signature", "X-Amz-Signature":
			sigHex = value
			continue
		case "X-Goog-Algorithm":
			p.Dialect, p.Algorithm = GOOG4, value
		case "X-Amz-Algorithm":
			p.Dialect, p.Algorithm = AWS4, value
		}
		query = append(query, Param{name, value})
	}
	if p.Algorithm == "" || sigHex == "" {
		return nil, fmt.Errorf("%w: no X-Goog-/X-Amz-Algorithm or Signature parameter", ErrMalformed)
	}
	prefix := p.Dialect.paramPrefix()
	get := func(name string) string {
		for _, q := range query {
			if q.Name == prefix+name {
				return q.Value
			}
		}
		return ""
	}
	if p.Signature, err = hex.DecodeString(sigHex); err != nil {
		return nil, fmt.Errorf("%w: signature is not hex", ErrMalformed)
	}
	if p.Date, err = time.Parse(dateTimeFormat, get("Date")); err != nil {
		return nil, fmt.Errorf("%w: bad %sDate", ErrMalformed, prefix)
	}
	secs, err := strconv.ParseInt(get("Expires"), 10, 64)
	if err != nil || secs <= 0 {
		return nil, fmt.Errorf("%w: bad %sExpires", ErrMalformed, prefix)
	}
	p.Expires = time.Duration(secs) * time.Second
	cred := strings.Split(get("Credential"), "/")
	if len(cred) < 5 {
		return nil, fmt.Errorf("%w: bad %sCredential", ErrMalformed, prefix)
	}
	n := len(cred)
	p.Identity = strings.Join(cred[:n-4], "/")
	p.Scope = Scope{Dialect: p.Dialect, Date: cred[n-4], Region: cred[n-3]}
	if cred[n-2] != p.Scope.Service() || cred[n-1] != p.Scope.Terminator() || p.Scope.Date != p.Date.Format(dateFormat) {
		return nil, fmt.Errorf("%w: credential scope %s does not match the URL", ErrMalformed, strings.Join(cred[n-4:], "/"))
	}
	p.SignedHeaders = strings.Split(get("SignedHeaders"), ";")

	host := signedHost(u.Host, u.Scheme, p.Dialect == GOOG4)
	all := []Header{{"host", host}}
	for _, h := range headers {
		if !strings.EqualFold(h.Name, "host") {
			all = append(all, h)
		}
	}
	canon := CanonicalHeaders(all)
	if got := SignedHeaders(canon); got != get("SignedHeaders") {
		return nil, fmt.Errorf("%w: the URL signs headers %q but %q were given", ErrMalformed, get("SignedHeaders"), got)
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	p.Object = strings.TrimPrefix(path, "/")
	p.Canonical = CanonicalRequest{
		Method:      strings.ToUpper(method),
		Path:        EscapePath(path),
		Query:       query,
		Headers:     canon,
		PayloadHash: payloadHash(canon, p.Dialect),
	}
	p.StringToSign = StringToSign(p.Algorithm, get("Date"), p.Scope, p.Canonical.String())
	return p, nil
}

// VerifyRSA checks the signature with an RSA public key.
func (p *ParsedURL) VerifyRSA(pub *rsa.PublicKey) error {
	if !strings.HasSuffix(p.Algorithm, "-RSA-SHA256") {
		return fmt.Errorf("%w: algorithm %s is not RSA", ErrMalformed, p.Algorithm)
	}
	sum := sha256.Sum256([]byte(p.StringToSign))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], p.Signature) != nil {
		return ErrTampered
	}
	return nil
}

// VerifyHMAC checks the signature with an HMAC secret.
func (p *ParsedURL) VerifyHMAC(secret []byte) error {
	if !strings.HasSuffix(p.Algorithm, "-HMAC-SHA256") {
		return fmt.Errorf("%w: algorithm %s is not HMAC", ErrMalformed, p.Algorithm)
	}
	mac := hmac.New(sha256.New, DeriveHMACKey(p.Scope, secret))
	mac.Write([]byte(p.StringToSign))
	if !hmac.Equal(mac.Sum(nil), p.Signature) {
		return ErrTampered
	}
	return nil
}

// CheckTime reports ErrExpired or ErrNotYetValid for a URL used at now.
func (p *ParsedURL) CheckTime(now time.Time) error {
	switch {
	case now.Before(p.Date):
		return fmt.Errorf("%w: signed for %s, %s from now", ErrNotYetValid, p.Date.Format(time.RFC3339), p.Date.Sub(now).Round(time.Second))
	case !now.Before(p.ExpiresAt()):
		return fmt.Errorf("%w at %s, %s ago", ErrExpired, p.ExpiresAt().Format(time.RFC3339), now.Sub(p.ExpiresAt()).Round(time.Second))
	}
	return nil
}
