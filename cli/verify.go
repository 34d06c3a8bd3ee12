package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

const verifyUsage = `Usage: linkissuer verify [flags] URL     (- reads the URL from stdin)

Decodes a V4 signed URL (GOOG4 or AWS4): algorithm, credential, signed headers,
signing time, expiry and time left. Then verifies its signature and time window
and prints one verdict: valid, expired, not yet valid, tampered, unknown key or
malformed (or not checked, when no key could be loaded). The exit code is 0
only for valid. The signature itself is never
printed, only its length and first bytes.

Keys for RSA URLs (default: Google's public certificates of the URL's service
account, https://www.googleapis.com/service_accounts/v1/metadata/x509/EMAIL):
  --key-file FILE      service-account JSON key, PEM key, PEM public key or certificate
  --cert-url URL       x509 endpoint answering {"KEY_ID": "PEM certificate", ...}
  --jwk-url URL        JWK set endpoint answering {"keys": [...]}
  --iam-endpoint URL   an IAM Credentials emulator (linkissuer emulate iam, dev, demo)
A --cert-url or --jwk-url ending in "/" gets the URL's service-account email
appended. HMAC URLs need --hmac-access-id and the secret, from
--hmac-secret-file or $LINKISSUER_HMAC_SECRET.

Sign with headers (--header when signing) must be verified with the same ones.`

// Verdicts of `linkissuer verify`.
const (
	verdictValid       = "valid"
	verdictExpired     = "expired"
	verdictNotYetValid = "not yet valid"
	verdictTampered    = "tampered"
	verdictUnknownKey  = "unknown key"
	verdictMalformed   = "malformed"
	verdictUnchecked   = "not checked"
)

// googleCertsURL is where Google publishes the certificates of a service
// account's Google-managed and user-managed keys.
const googleCertsURL = "https://www.googleapis.com/service_accounts/v1/metadata/x509/"

// verifyFlags is the parsed command line of `linkissuer verify`.
type verifyFlags struct {
	method         string
	headers        stringList
	keyFile        string
	certURL        string
	jwkURL         string
	iamEndpoint    string
	hmacAccessID   string
	hmacSecretFile string
	at             string
	timeout        time.Duration
}

// Verify implements `linkissuer verify`.
func Verify(ctx context.Context, env Env, args []string) int {
	var f verifyFlags
	fs := newFlagSet(env, "verify", verifyUsage)
	fs.StringVar(&f.method, "method", "GET", "HTTP method the URL will be used with (POST for RESUMABLE links)")
	fs.Var(&f.headers, "header", "header 'Name: value' the client sends, for URLs that sign more than host (repeatable)")
	fs.StringVar(&f.keyFile, "key-file", "", "RSA key: service-account JSON, PEM private or public key, or PEM certificate")
	fs.StringVar(&f.certURL, "cert-url", "", "x509 public-certificate endpoint (default Google's, for the URL's service account)")
	fs.StringVar(&f.jwkURL, "jwk-url", "", "JWK set endpoint")
	fs.StringVar(&f.iamEndpoint, "iam-endpoint", envString(env, "LINKISSUER_IAM_ENDPOINT", ""), "IAM Credentials emulator endpoint whose public keys to use [$LINKISSUER_IAM_ENDPOINT]")
	fs.StringVar(&f.hmacAccessID, "hmac-access-id", envString(env, "LINKISSUER_HMAC_ACCESS_ID", ""), "HMAC access ID; the secret comes from --hmac-secret-file or $LINKISSUER_HMAC_SECRET [$LINKISSUER_HMAC_ACCESS_ID]")
	fs.StringVar(&f.hmacSecretFile, "hmac-secret-file", envString(env, "LINKISSUER_HMAC_SECRET_FILE", ""), "file holding the HMAC secret [$LINKISSUER_HMAC_SECRET_FILE]")
	fs.StringVar(&f.at, "at", "", "check the time window at this RFC 3339 time (default now)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on fetching public keys")
	urls, err := parseInterspersed(fs, args)
	if err != nil {
		return ExitUsage
	}
	if len(urls) != 1 {
		fs.Usage()
		return ExitUsage
	}
	raw := urls[0]
	if raw == "-" {
		if raw, err = readLine(env.Stdin); err != nil {
			fmt.Fprintf(env.Stderr, "linkissuer verify: reading the URL from stdin: %v\n", err)
			return ExitUsage
		}
	}
	req, err := f.request(raw)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer verify: %v\n", err)
		return ExitUsage
	}
	keys, err := f.keySource(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer verify: %v\n", err)
		return ExitUsage
	}
	kctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res := verifySignedURL(kctx, req, keys)
	printVerification(env.Stdout, req, res)
	if res.verdict != verdictValid {
		if res.usage {
			return ExitUsage
		}
		return ExitFailure
	}
	return ExitOK
}

// parseInterspersed parses flags that may follow positional arguments
// ("verify URL --method PUT"), which the flag package alone stops at.
func parseInterspersed(fs interface {
	Parse([]string) error
	Args() []string
}, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// readLine reads the first non-blank line of r.
func readLine(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			return line, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no URL")
}

// verifyRequest is what to check: the URL as the client will use it.
type verifyRequest struct {
	raw     string
	method  string
	headers []sign.Header
	at      time.Time
}

func (f *verifyFlags) request(raw string) (verifyRequest, error) {
	r := verifyRequest{raw: strings.TrimSpace(raw), method: strings.ToUpper(f.method), at: time.Now()}
	if r.method == "RESUMABLE" {
		r.method = "POST"
		r.headers = append(r.headers, sign.Header{Name: "x-goog-resumable", Value: "start"})
	}
	if f.at != "" {
		at, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return r, fmt.Errorf("--at %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", f.at)
		}
		r.at = at
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return r, fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		r.headers = append(r.headers, sign.Header{Name: strings.TrimSpace(name), Value: value})
	}
	return r, nil
}

// keySource says where the verifying key comes from. Exactly one field is
// set, except that all are empty for Google's default certificate endpoint.
type keySource struct {
	keyFile  string
	certURL  string
	jwkURL   string
	hmacID   string
	secret   []byte
	explicit bool // a key was named on the command line
}

func (f *verifyFlags) keySource(env Env) (keySource, error) {
	n := 0
	for _, set := range []bool{f.keyFile != "", f.certURL != "", f.jwkURL != "", f.iamEndpoint != "", f.hmacAccessID != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return keySource{}, errors.New("choose one of --key-file, --cert-url, --jwk-url, --iam-endpoint and --hmac-access-id")
	}
	k := keySource{keyFile: f.keyFile, certURL: f.certURL, jwkURL: f.jwkURL, hmacID: f.hmacAccessID, explicit: n == 1}
	if f.iamEndpoint != "" {
		u, err := url.Parse(f.iamEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return keySource{}, fmt.Errorf("--iam-endpoint %q: want http(s)://host[:port]/", f.iamEndpoint)
		}
		k.certURL = strings.TrimSuffix(f.iamEndpoint, "/") + "/service_accounts/v1/metadata/x509/"
	}
	if k.hmacID != "" {
		secret, err := hmacSecret(env, f.hmacSecretFile)
		if err != nil {
			return keySource{}, err
		}
		k.secret = []byte(secret)
	}
	return k, nil
}

// verifyResult is the outcome of checking one URL.
type verifyResult struct {
	parsed  *sign.ParsedURL
	verdict string
	// detail explains the verdict.
	detail string
	// key describes the key that verified (or was tried).
	key string
	// usage marks a verdict that is the caller's mistake (wrong kind of
	// key for the URL), reported with the usage exit code.
	usage bool
}

// verifySignedURL decodes req.raw and checks its signature with keys, then
// its time window at req.at. A signature that does not verify decides the
// verdict before the time does: an altered URL is tampered whatever its
// dates say.
func verifySignedURL(ctx context.Context, req verifyRequest, keys keySource) verifyResult {
	p, err := sign.ParseSignedURL(req.raw, req.method, req.headers)
	if err != nil {
		// url.Parse quotes the whole URL, signature included, in its errors.
		return verifyResult{verdict: verdictMalformed, detail: redactSignature(err.Error(), req.raw)}
	}
	res := verifyResult{parsed: p}
	hmacURL := strings.HasSuffix(p.Algorithm, "-HMAC-SHA256")
	switch {
	case hmacURL && keys.hmacID == "":
		res.verdict, res.usage = verdictUnchecked, true
		res.detail = "the URL is HMAC-signed (" + p.Algorithm + "): give --hmac-access-id and the secret"
		return res
	case hmacURL:
		res.key = "HMAC key " + keys.hmacID
		if keys.hmacID != p.Identity {
			res.verdict = verdictUnknownKey
			res.detail = fmt.Sprintf("the URL was signed with access ID %s, not %s", p.Identity, keys.hmacID)
			return res
		}
		if p.VerifyHMAC(keys.secret) != nil {
			res.verdict = verdictTampered
			res.detail = "the signature does not match: the URL was altered (or the secret is not this access ID's)"
			return res
		}
	case keys.hmacID != "":
		res.verdict, res.usage = verdictUnchecked, true
		res.detail = "the URL is RSA-signed (" + p.Algorithm + "): give an RSA key, not an HMAC key"
		return res
	case !strings.HasSuffix(p.Algorithm, "-RSA-SHA256"):
		res.verdict = verdictMalformed
		res.detail = "unknown algorithm " + p.Algorithm
		return res
	default:
		set, err := loadKeys(ctx, keys, p.Identity)
		if err != nil {
			res.verdict, res.detail = verdictUnchecked, err.Error()
			if errors.Is(err, errNoKeys) {
				res.verdict = verdictUnknownKey
			}
			return res
		}
		v, detail, used := checkRSA(p, set)
		res.key = used
		if v != "" {
			res.verdict, res.detail = v, detail
			return res
		}
	}
	if err := p.CheckTime(req.at); err != nil {
		res.verdict = verdictExpired
		if errors.Is(err, sign.ErrNotYetValid) {
			res.verdict = verdictNotYetValid
		}
		res.detail = "the signature is genuine, but the URL is " + err.Error()
		return res
	}
	res.verdict = verdictValid
	res.detail = "the signature is genuine and the URL is within its time window"
	return res
}

// checkRSA verifies p with each key of set. It returns an empty verdict and
// the key that verified, or the verdict: tampered when one key's signature
// is recognisable but covers something else, unknown key when no key made
// this signature at all.
func checkRSA(p *sign.ParsedURL, set *keySet) (verdict, detail, key string) {
	for _, k := range set.keys {
		if p.VerifyRSA(k.pub) == nil {
			return "", "", k.describe(set.source)
		}
	}
	for _, k := range set.keys {
		if signedBy(p.Signature, k.pub) {
			return verdictTampered, "key " + k.id + " made this signature, but over a different request: the URL was altered (path, query, host, method or headers)", k.describe(set.source)
		}
	}
	detail = fmt.Sprintf("none of the %d key(s) from %s made this signature", len(set.keys), set.source)
	if set.identity != "" && set.identity != p.Identity {
		detail += fmt.Sprintf(" (the key is %s's; the URL names %s)", set.identity, p.Identity)
	}
	return verdictUnknownKey, detail, set.source
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

// redactSignature cuts the signature of the URL raw, wherever it appears in
// text, to its first 8 characters.
func redactSignature(text, raw string) string {
	for _, m := range signatureParam.FindAllStringSubmatch(raw, -1) {
		if sig := m[1]; len(sig) > 8 {
			text = strings.ReplaceAll(text, sig, sig[:8]+"…")
		}
	}
	return text
}

// printVerification writes the decoded URL and the verdict. It never
// writes the signature, nor the URL (which contains it).
func printVerification(w io.Writer, req verifyRequest, res verifyResult) {
	line := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-15s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	if p := res.parsed; p != nil {
		u, _ := url.Parse(req.raw) // parsed already
		line("algorithm", "%s", p.Algorithm)
		line("credential", "%s", p.Identity)
		line("scope", "%s", p.Scope)
		line("request", "%s %s://%s%s", p.Canonical.Method, u.Scheme, u.Host, u.Path)
		if q := extraQuery(p); q != "" {
			line("query", "%s", q)
		}
		line("signed headers", "%s", strings.Join(p.SignedHeaders, ";"))
		line("signed at", "%s", p.Date.UTC().Format(time.RFC3339))
		line("expires at", "%s (%s after signing)", p.ExpiresAt().UTC().Format(time.RFC3339), p.Expires)
		line("time left", "%s (at %s)", timeLeft(p, req.at), req.at.UTC().Format(time.RFC3339))
		line("signature", "%d bytes, %x…", len(p.Signature), p.Signature[:min(4, len(p.Signature))])
	}
	if res.key != "" {
		line("key", "%s", res.key)
	}
	line("verdict", "%s", strings.ToUpper(res.verdict))
	if res.detail != "" {
		line("why", "%s", res.detail)
	}
}

// extraQuery lists the signed query parameters other than the V4 ones.
func extraQuery(p *sign.ParsedURL) string {
	var parts []string
	for _, q := range p.Canonical.Query {
		if strings.HasPrefix(q.Name, "X-Goog-") && isV4Param(strings.TrimPrefix(q.Name, "X-Goog-")) ||
			strings.HasPrefix(q.Name, "X-Amz-") && isV4Param(strings.TrimPrefix(q.Name, "X-Amz-")) {
			continue
		}
		parts = append(parts, q.Name+"="+q.Value)
	}
	return strings.Join(parts, "&")
}

func isV4Param(name string) bool {
	switch name {
	case "Algorithm", "Credential", "Date", "Expires", "SignedHeaders":
		return true
	}
	return false
}

func timeLeft(p *sign.ParsedURL, at time.Time) string {
	switch {
	case at.Before(p.Date):
		return "none yet: valid from " + p.Date.UTC().Format(time.RFC3339) + ", in " + p.Date.Sub(at).Round(time.Second).String()
	case !at.Before(p.ExpiresAt()):
		return "none: expired " + at.Sub(p.ExpiresAt()).Round(time.Second).String() + " ago"
	}
	return p.ExpiresAt().Sub(at).Round(time.Second).String()
}
