package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"slices"
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
//
// The signing parameters' names are matched in any case, as Cloud Storage
// and S3 match them (gcloud and gsutil write x-goog-signature, ...), and the
// canonical query is rebuilt with every name exactly as sent. A '+' in the
// query is a space, as in every form-encoded query (producers write a
// literal '+' as %2B). A signing parameter given twice is malformed.
func ParseSignedURL(raw, method string, headers []Header) (*ParsedURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, signature included: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if method == "" {
		method = "GET"
	}
	p := &ParsedURL{}
	var query []Param
	var sigHex string
	// v4 holds the values of the signing parameters by their canonical
	// suffix (Algorithm, Credential, ...), whatever the case they came in.
	v4 := map[string]string{}
	for _, part := range strings.Split(u.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: bad escape in query parameter %q", ErrMalformed, k)
		}
		d, suffix, ok := signingParam(name)
		if !ok {
			query = append(query, Param{name, value})
			continue
		}
		if p.Algorithm != "" && d != p.Dialect {
			return nil, fmt.Errorf("%w: both X-Goog- and X-Amz- signing parameters", ErrMalformed)
		}
		if _, dup := v4[suffix]; dup {
			return nil, fmt.Errorf("%w: signing parameter %s given twice", ErrMalformed, name)
		}
		v4[suffix] = value
		switch suffix {
		case "Signature":
			sigHex = value
			continue // not signed
		case "Algorithm":
			p.Dialect, p.Algorithm = d, value
		}
		query = append(query, Param{name, value})
	}
	if p.Algorithm == "" || sigHex == "" {
		return nil, fmt.Errorf("%w: no X-Goog-/X-Amz-Algorithm or Signature parameter (in any case)", ErrMalformed)
	}
	prefix := p.Dialect.paramPrefix()
	get := func(name string) string { return v4[name] }
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

// signingParam reports whether name is a V4 signing parameter in any case
// (x-goog-signature, X-Amz-Date, ...), and which: its dialect and its
// suffix in canonical case.
func signingParam(name string) (d Dialect, suffix string, ok bool) {
	for _, d := range []Dialect{GOOG4, AWS4} {
		prefix := d.paramPrefix()
		if len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
			continue
		}
		for _, s := range v4Suffixes {
			if strings.EqualFold(name[len(prefix):], s) {
				return d, s, true
			}
		}
	}
	return 0, "", false
}

// v4Suffixes are the signing parameters' names after X-Goog- / X-Amz-.
var v4Suffixes = [...]string{"Algorithm", "Credential", "Date", "Expires", "SignedHeaders", "Signature"}

// ExtraQuery lists the signed query parameters other than the V4 signing
// ones, as NAME=VALUE joined by '&' (unescaped, for display).
func (p *ParsedURL) ExtraQuery() string {
	var parts []string
	for _, q := range p.Canonical.Query {
		if _, _, ok := signingParam(q.Name); !ok {
			parts = append(parts, q.Name+"="+q.Value)
		}
	}
	return strings.Join(parts, "&")
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

// PublicKey is one RSA verification key and its ID, when known.
type PublicKey struct {
	ID  string
	Key *rsa.PublicKey
}

// KeySet is the public keys one source offers.
type KeySet struct {
	// Source says where the keys came from, for messages.
	Source string
	// Identity is the account the keys belong to, when the source says
	// (a JSON key file).
	Identity string
	Keys     []PublicKey
}

// describe names key k of set for messages.
func (set *KeySet) describe(k PublicKey) string {
	if k.ID == "" {
		return set.Source
	}
	return "key " + k.ID + " from " + set.Source
}

// ErrNoKeys means a key source has no key for the account (an endpoint
// answered 404 or an empty set): the verdict is UnknownKey.
var ErrNoKeys = errors.New("no public keys")

// Verdict is the outcome of Verify.
type Verdict string

// Verdicts of Verify.
const (
	Valid       Verdict = "valid"
	Expired     Verdict = "expired"
	NotYetValid Verdict = "not yet valid"
	Tampered    Verdict = "tampered"
	// WrongMethod: the signature is genuine, but for another method than
	// the one the URL was checked with.
	WrongMethod Verdict = "wrong method"
	UnknownKey  Verdict = "unknown key"
	Malformed   Verdict = "malformed"
	// Unchecked: no key could be loaded, or the key given does not suit
	// the URL's algorithm (see Verification.Misuse).
	Unchecked Verdict = "not checked"
)

// VerifyRequest is a signed URL as a client will use it.
type VerifyRequest struct {
	URL string
	// Method is the HTTP method the client will use, RESUMABLE for the POST
	// that starts a resumable upload. Empty means any: the verdict is for the
	// method the signature fits (GET tried first).
	Method string
	// Headers the client sends besides host, for URLs that sign more.
	Headers []Header
	// At is when the URL is used, for the time window.
	At time.Time
}

// VerifyKeys is what signatures are checked with: RSA public keys, loaded
// for the URL's account, or an HMAC key.
type VerifyKeys struct {
	// RSA loads the public keys of the account that signed (identity is
	// the URL's credential). It may do I/O; package sign/keys has loaders.
	// An error wrapping ErrNoKeys gives the verdict UnknownKey.
	RSA func(ctx context.Context, identity string) (*KeySet, error)
	// HMACAccessID and HMACSecret verify HMAC URLs.
	HMACAccessID string
	HMACSecret   []byte
}

// Verification is the outcome of checking one URL.
type Verification struct {
	// Parsed is the URL taken apart for the method the verdict is about
	// (nil when malformed).
	Parsed  *ParsedURL
	Verdict Verdict
	// Detail explains the verdict. It never contains the signature.
	Detail string
	// Key describes the key that verified (or was tried).
	Key string
	// Method is the method the signature fits, when one does
	// (RESUMABLE for a resumable-upload start).
	Method string
	// Misuse marks a verdict that is the caller's mistake: an HMAC key for
	// an RSA URL or the reverse, or no HMAC key for an HMAC URL.
	Misuse bool
}

// candidate is the URL parsed for one method.
type candidate struct {
	method string
	p      *ParsedURL
}

// parseCandidates parses the URL for the requested method first, then for
// every other method of Methods, keeping those that parse. err is the
// requested method's parse error.
func parseCandidates(req VerifyRequest) (cands []candidate, err error) {
	requested := strings.ToUpper(req.Method)
	order := make([]string, 0, len(methods)+1)
	if requested != "" {
		order = append(order, requested)
	}
	for _, m := range methods {
		if m != requested {
			order = append(order, m)
		}
	}
	for i, m := range order {
		method, headers := m, req.Headers
		if m == MethodResumable {
			method = "POST"
			headers = append(slices.Clip(headers), resumableHeader)
		}
		p, perr := ParseSignedURL(req.URL, method, headers)
		if perr != nil {
			if i == 0 {
				err = perr
			}
			continue
		}
		cands = append(cands, candidate{m, p})
	}
	return cands, err
}

// Verify decodes req.URL and checks its signature with keys, then its time
// window at req.At. A signature that does not verify decides the verdict
// before the time does: an altered URL is tampered whatever its dates say.
// When the signature fits another method than req.Method, the verdict is
// WrongMethod and says which. Only keys.RSA does I/O.
func Verify(ctx context.Context, req VerifyRequest, keys VerifyKeys) Verification {
	cands, err := parseCandidates(req)
	if len(cands) == 0 {
		return Verification{Verdict: Malformed, Detail: RedactSignature(err.Error(), req.URL)}
	}
	first := cands[0].p
	res := Verification{Parsed: first}
	var fits func(p *ParsedURL) (key string, ok bool)
	var rsaSet *KeySet
	hmacURL := strings.HasSuffix(first.Algorithm, "-HMAC-SHA256")
	switch {
	case hmacURL && keys.HMACAccessID == "":
		res.Verdict, res.Misuse = Unchecked, true
		res.Detail = "the URL is HMAC-signed (" + first.Algorithm + "): it needs an HMAC access ID and secret"
		return res
	case hmacURL:
		res.Key = "HMAC key " + keys.HMACAccessID
		if keys.HMACAccessID != first.Identity {
			res.Verdict = UnknownKey
			res.Detail = fmt.Sprintf("the URL was signed with access ID %s, not %s", first.Identity, keys.HMACAccessID)
			return res
		}
		fits = func(p *ParsedURL) (string, bool) { return res.Key, p.VerifyHMAC(keys.HMACSecret) == nil }
	case keys.HMACAccessID != "":
		res.Verdict, res.Misuse = Unchecked, true
		res.Detail = "the URL is RSA-signed (" + first.Algorithm + "): it needs an RSA key, not an HMAC key"
		return res
	case !strings.HasSuffix(first.Algorithm, "-RSA-SHA256"):
		res.Verdict = Malformed
		res.Detail = "unknown algorithm " + first.Algorithm
		return res
	case keys.RSA == nil:
		res.Verdict, res.Misuse = Unchecked, true
		res.Detail = "the URL is RSA-signed (" + first.Algorithm + "): it needs RSA public keys"
		return res
	default:
		set, err := keys.RSA(ctx, first.Identity)
		if err != nil {
			res.Verdict, res.Detail = Unchecked, err.Error()
			if errors.Is(err, ErrNoKeys) {
				res.Verdict = UnknownKey
			}
			return res
		}
		fits = func(p *ParsedURL) (string, bool) {
			for _, k := range set.Keys {
				if p.VerifyRSA(k.Key) == nil {
					return set.describe(k), true
				}
			}
			return "", false
		}
		rsaSet = set
	}
	var fit *candidate
	for i := range cands {
		if key, ok := fits(cands[i].p); ok {
			fit, res.Key = &cands[i], key
			break
		}
	}
	if fit == nil && err != nil {
		// The requested method's headers do not match what the URL signs,
		// and no other method fits either: say so, not "tampered".
		return Verification{Verdict: Malformed, Detail: RedactSignature(err.Error(), req.URL)}
	}
	switch {
	case fit == nil && rsaSet != nil:
		res.Verdict, res.Detail, res.Key = diagnoseRSA(first, rsaSet)
		return res
	case fit == nil:
		res.Verdict = Tampered
		res.Detail = "the signature does not match: the URL was altered (or the secret is not this access ID's)"
		return res
	}
	res.Method = fit.method
	requested := strings.ToUpper(req.Method)
	if requested != "" && fit.method != requested {
		res.Verdict = WrongMethod
		res.Detail = fmt.Sprintf("the signature is genuine, but for %s, not %s: the URL works only with %s", fit.method, requested, fit.method)
		return res
	}
	res.Parsed = fit.p
	if err := fit.p.CheckTime(req.At); err != nil {
		res.Verdict = Expired
		if errors.Is(err, ErrNotYetValid) {
			res.Verdict = NotYetValid
		}
		res.Detail = "the signature is genuine, but the URL is " + err.Error()
		return res
	}
	res.Verdict = Valid
	res.Detail = "the signature is genuine and the URL is within its time window"
	return res
}

// diagnoseRSA tells why no key of set verified p: tampered when one key's
// signature is recognisable but covers something else, or when the set is
// the URL's own account's key (a JSON key file) and the signature is
// unrecognisable; unknown key when no key made this signature at all.
func diagnoseRSA(p *ParsedURL, set *KeySet) (v Verdict, detail, key string) {
	for _, k := range set.Keys {
		if signedBy(p.Signature, k.Key) {
			return Tampered, "key " + k.ID + " made this signature, but over a different request: the URL was altered (path, query, host or headers)", set.describe(k)
		}
	}
	if set.Identity != "" && set.Identity == p.Identity {
		// The key is the account's own (a JSON key file names it), yet
		// the signature is not one it made: the signature bytes were
		// altered, unless the account has another key that signed.
		return Tampered, fmt.Sprintf("the URL names %s, whose key this is, but the key did not make this signature: the signature was altered (or another key of the account signed)", p.Identity), set.Source
	}
	detail = fmt.Sprintf("none of the %d key(s) from %s made this signature", len(set.Keys), set.Source)
	if set.Identity != "" {
		detail += fmt.Sprintf(" (the key is %s's; the URL names %s)", set.Identity, p.Identity)
	}
	return UnknownKey, detail, set.Source
}

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017 9.2).
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// signedBy reports whether sig is a PKCS #1 v1.5 SHA-256 signature made by
// pub's private key, over any message. It opens the signature with the
// public exponent and checks the padding and DigestInfo; the digest is not
// compared. With the wrong key the opened block is noise, so a failed
// verification is told apart: tampered (right key, other content) or
// unknown key. It is a diagnosis only, never a reason to accept.
func signedBy(sig []byte, pub *rsa.PublicKey) bool {
	k := pub.Size()
	if len(sig) != k {
		return false
	}
	c := new(big.Int).SetBytes(sig)
	if c.Cmp(pub.N) >= 0 {
		return false
	}
	em := new(big.Int).Exp(c, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, k))
	t := len(sha256DigestInfo) + 32
	if k < t+11 || em[0] != 0 || em[1] != 1 || em[k-t-1] != 0 {
		return false
	}
	for _, b := range em[2 : k-t-1] {
		if b != 0xff {
			return false
		}
	}
	return bytes.Equal(em[k-t:k-32], sha256DigestInfo)
}

var signatureParam = regexp.MustCompile(`(?i)X-(?:Goog|Amz)-Signature=([0-9a-f]+)`)

// RedactSignature cuts the signature of the URL raw, wherever it appears
// in text, to its first 8 characters.
func RedactSignature(text, raw string) string {
	for _, m := range signatureParam.FindAllStringSubmatch(raw, -1) {
		if sig := m[1]; len(sig) > 8 {
			text = strings.ReplaceAll(text, sig, sig[:8]+"…")
		}
	}
	return text
}
