package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/keys"
)

const verifyUsage = `Usage: linkissuer verify [flags] URL     (- reads the URL from stdin)

Decodes a V4 signed URL (GOOG4 or AWS4; parameter names in any case, as gcloud
and gsutil write them): algorithm, credential, signed headers, signing time,
expiry and time left. Then verifies its signature and time window and prints
one verdict: valid, expired, not yet valid, tampered, wrong method, unknown key
or malformed (or not checked, when no key could be loaded). The exit code is 0
only for valid. The signature itself is never printed, only its length and
first bytes.

Without --method the verdict is for the method the signature fits (GET tried
first). With --method, a genuine signature for another method is "wrong
method", and the verdict names the method it fits.

Keys for RSA URLs (default: Google's public certificates of the URL's service
account, https://www.googleapis.com/service_accounts/v1/metadata/x509/EMAIL):
  --key-file FILE      service-account JSON key, PEM key, PEM public key or certificate
  --cert-url URL       x509 endpoint answering {"KEY_ID": "PEM certificate", ...}
  --jwk-url URL        JWK set endpoint answering {"keys": [...]}
  --iam-endpoint URL   an IAM Credentials emulator (linkissuer emulate iam, dev, demo)
A --cert-url or --jwk-url ending in "/" gets the URL's service-account email
appended. HMAC URLs need --hmac-access-id and the secret, from
--hmac-secret-file or $LINKISSUER_HMAC_SECRET.

Sign with headers (--header when signing) must be verified with the same ones.
A resumable-upload link's method is RESUMABLE: the POST that starts the
upload, with x-goog-resumable: start signed in (--method POST does not add it).`

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
	// loaded is the RSA key set the verification used, to name the key
	// that signed.
	loaded *sign.KeySet
}

// Verify implements `linkissuer verify`.
func Verify(ctx context.Context, env Env, args []string) int {
	var f verifyFlags
	fs := newFlagSet(env, "verify", verifyUsage)
	fs.StringVar(&f.method, "method", "", "HTTP method the URL will be used with: "+sign.MethodList+" (RESUMABLE for resumable-upload links; default: the method the signature fits, GET first)")
	fs.Var(&f.headers, "header", "header 'Name: value' the client sends, for URLs that sign more than host (repeatable)")
	fs.StringVar(&f.keyFile, "key-file", "", "RSA key: service-account JSON, PEM private or public key, or PEM certificate")
	fs.StringVar(&f.certURL, "cert-url", "", "x509 public-certificate endpoint (default Google's, for the URL's service account)")
	fs.StringVar(&f.jwkURL, "jwk-url", "", "JWK set endpoint")
	fs.StringVar(&f.iamEndpoint, "iam-endpoint", envString(env, "LINKISSUER_IAM_ENDPOINT", ""), "IAM Credentials emulator endpoint whose public keys to use [$LINKISSUER_IAM_ENDPOINT]")
	fs.StringVar(&f.hmacAccessID, "hmac-access-id", envString(env, "LINKISSUER_HMAC_ACCESS_ID", ""), "HMAC access ID; the secret comes from --hmac-secret-file or $LINKISSUER_HMAC_SECRET [$LINKISSUER_HMAC_ACCESS_ID]")
	fs.StringVar(&f.hmacSecretFile, "hmac-secret-file", envString(env, "LINKISSUER_HMAC_SECRET_FILE", ""), "file holding the HMAC secret [$LINKISSUER_HMAC_SECRET_FILE]")
	fs.StringVar(&f.at, "at", "", "check the time window at this RFC 3339 time (default now)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on fetching public keys")
	urls, err := parseFlagsInterspersed(fs, env, args)
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
	vkeys, err := f.keySource(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer verify: %v\n", err)
		return ExitUsage
	}
	kctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res := sign.Verify(kctx, req, vkeys)
	printVerification(env.Stdout, req, res)
	printSigner(env.Stdout, res, f.loaded)
	if res.Verdict != sign.Valid {
		if res.Misuse {
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

func (f *verifyFlags) request(raw string) (sign.VerifyRequest, error) {
	r := sign.VerifyRequest{URL: strings.TrimSpace(raw), Method: strings.ToUpper(f.method), At: time.Now()}
	if r.Method != "" && !sign.ValidMethod(r.Method) {
		return r, fmt.Errorf("--method %q: must be one of %s", f.method, sign.MethodList)
	}
	if f.at != "" {
		at, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return r, fmt.Errorf("--at %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", f.at)
		}
		r.At = at
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return r, fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		r.Headers = append(r.Headers, sign.Header{Name: strings.TrimSpace(name), Value: value})
	}
	return r, nil
}

// keySource turns the key flags into what sign.Verify checks with: at
// most one source; none means Google's certificates of the URL's account.
func (f *verifyFlags) keySource(env Env) (sign.VerifyKeys, error) {
	n := 0
	for _, set := range []bool{f.keyFile != "", f.certURL != "", f.jwkURL != "", f.iamEndpoint != "", f.hmacAccessID != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return sign.VerifyKeys{}, errors.New("choose one of --key-file, --cert-url, --jwk-url, --iam-endpoint and --hmac-access-id")
	}
	if f.hmacAccessID != "" {
		secret, err := hmacSecret(env, f.hmacSecretFile)
		if err != nil {
			return sign.VerifyKeys{}, err
		}
		return sign.VerifyKeys{HMACAccessID: f.hmacAccessID, HMACSecret: []byte(secret)}, nil
	}
	src := keys.Source{File: f.keyFile, CertURL: f.certURL, JWKURL: f.jwkURL}
	if f.iamEndpoint != "" {
		u, err := url.Parse(f.iamEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return sign.VerifyKeys{}, fmt.Errorf("--iam-endpoint %q: want http(s)://host[:port]/", f.iamEndpoint)
		}
		src.CertURL = strings.TrimSuffix(f.iamEndpoint, "/") + "/service_accounts/v1/metadata/x509/"
	}
	load := func(ctx context.Context, identity string) (*sign.KeySet, error) {
		set, err := src.Load(ctx, identity)
		f.loaded = set
		if err != nil && !errors.Is(err, sign.ErrNoKeys) && src.File == "" {
			err = fmt.Errorf("%w (use --key-file, --cert-url or --iam-endpoint offline)", err)
		}
		return set, err
	}
	return sign.VerifyKeys{RSA: load}, nil
}

// misuseHint names the flags a Misuse verdict calls for.
func misuseHint(res sign.Verification) string {
	if strings.HasSuffix(res.Parsed.Algorithm, "-HMAC-SHA256") {
		return "give --hmac-access-id and the secret"
	}
	return "give --key-file, --cert-url, --jwk-url or --iam-endpoint (or none, for Google's certificates)"
}

// printVerification writes the decoded URL and the verdict. It never
// writes the signature, nor the URL (which contains it).
func printVerification(w io.Writer, req sign.VerifyRequest, res sign.Verification) {
	line := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-15s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	if p := res.Parsed; p != nil {
		u, _ := url.Parse(req.URL) // parsed already
		line("algorithm", "%s", p.Algorithm)
		line("credential", "%s", p.Identity)
		line("scope", "%s", p.Scope)
		method := p.Canonical.Method
		if res.Method == sign.MethodResumable && res.Verdict != sign.WrongMethod {
			method = sign.MethodResumable + " (POST)"
		}
		line("request", "%s %s://%s%s", method, u.Scheme, u.Host, u.Path)
		if q := p.ExtraQuery(); q != "" {
			line("query", "%s", q)
		}
		line("signed headers", "%s", strings.Join(p.SignedHeaders, ";"))
		line("signed at", "%s", p.Date.UTC().Format(time.RFC3339))
		line("expires at", "%s (%s after signing)", p.ExpiresAt().UTC().Format(time.RFC3339), p.Expires)
		line("time left", "%s (at %s)", timeLeft(p, req.At), req.At.UTC().Format(time.RFC3339))
		line("signature", "%d bytes, %x…", len(p.Signature), p.Signature[:min(4, len(p.Signature))])
		if fp, err := audit.Fingerprint(req.URL); err == nil {
			line("fingerprint", "%s (audit records' fingerprint)", fp)
		}
	}
	if res.Key != "" {
		line("key", "%s", res.Key)
	}
	line("verdict", "%s", strings.ToUpper(string(res.Verdict)))
	detail := res.Detail
	switch {
	case res.Verdict == sign.WrongMethod:
		detail += " (check it with --method " + res.Method + ")"
	case res.Misuse && res.Parsed != nil:
		detail += ": " + misuseHint(res)
	}
	if detail != "" {
		line("why", "%s", detail)
	}
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

// genuine verdicts say the signature is the signer's (only the time window
// or the method differ): the signing key can then be named.
var genuine = []sign.Verdict{sign.Valid, sign.Expired, sign.NotYetValid, sign.WrongMethod}

// printSigner names the key that signed a genuine link and the command
// that takes links of that key back: a signed URL cannot be revoked, only
// its key or its account's access (README, "Taking links back").
func printSigner(w io.Writer, res sign.Verification, set *sign.KeySet) {
	p := res.Parsed
	if p == nil || !slices.Contains(genuine, res.Verdict) {
		return
	}
	line := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-15s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	switch {
	case p.Algorithm == "GOOG4-HMAC-SHA256":
		line("signed by", "HMAC key %s", p.Identity)
		line("take back", "gcloud storage hmac update %s --deactivate   (every link of this key stops working)", p.Identity)
	case strings.HasSuffix(p.Algorithm, "-HMAC-SHA256"):
		line("signed by", "access key %s", p.Identity)
		line("take back", "deactivate access key %s in the store that issued it (every link of this key stops working)", p.Identity)
	default:
		id := signingKeyID(p, set)
		if id == "" {
			line("signed by", "service account %s (key id not resolvable from %s)", p.Identity, keySource(set))
			line("take back", "gcloud storage buckets remove-iam-policy-binding gs://BUCKET --member=serviceAccount:%s --role=ROLE", p.Identity)
			return
		}
		line("signed by", "service account %s, key %s", p.Identity, id)
		line("take back", "gcloud iam service-accounts keys disable %s --iam-account=%s   (a user-managed key: a key file's private_key_id)", id, p.Identity)
		line("or", "gcloud storage buckets remove-iam-policy-binding gs://BUCKET --member=serviceAccount:%s --role=ROLE   (keyless signBlob: Google-managed keys cannot be disabled)", p.Identity)
	}
}

// signingKeyID is the id of the key in set whose public key verifies p.
func signingKeyID(p *sign.ParsedURL, set *sign.KeySet) string {
	if set == nil {
		return ""
	}
	for _, k := range set.Keys {
		if k.ID != "" && p.VerifyRSA(k.Key) == nil {
			return k.ID
		}
	}
	return ""
}

func keySource(set *sign.KeySet) string {
	if set == nil {
		return "the keys given"
	}
	return set.Source
}
