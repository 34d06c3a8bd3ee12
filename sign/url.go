package sign

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits on a signed URL's lifetime.
const (
	MinExpiry     = time.Second
	MaxExpiry     = 7 * 24 * time.Hour
	KeylessExpiry = 12 * time.Hour
)

// Options configure a URLSigner. A nil *Options means GOOG4, region "auto",
// https://storage.googleapis.com, path style.
type Options struct {
	// Dialect is GOOG4 (default) or AWS4.
	Dialect Dialect
	// Region goes into the credential scope: "auto" by default for GOOG4,
	// required for AWS4.
	Region string
	// Endpoint says where the URLs point.
	Endpoint Endpoint
	// AllowLongKeyless lifts the 12-hour cap on keyless signatures up to the
	// 7-day maximum. Such URLs stop verifying once Google rotates the
	// system-managed key, which may happen after 12 hours.
	AllowLongKeyless bool
}

// Validate reports inconsistent options. It does not modify o.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	if o.Dialect != GOOG4 && o.Dialect != AWS4 {
		return &InputError{Field: "dialect", Reason: "unknown dialect"}
	}
	if o.Dialect == AWS4 && (o.Region == "" || o.Region == "auto") {
		return &InputError{Field: "region", Reason: "S3-style signing needs an explicit region (e.g. us-east-1)"}
	}
	if strings.ContainsAny(o.Region, "/ \n") {
		return &InputError{Field: "region", Reason: "must not contain '/', spaces or line breaks: " + quote(o.Region)}
	}
	return o.Endpoint.Validate()
}

// URLSigner issues V4 signed URLs and POST policies with one Signer. It is
// safe for concurrent use; it holds no clock: every request carries its
// signing time.
type URLSigner struct {
	signer    Signer
	cred      Credential
	algorithm string
	dialect   Dialect
	region    string
	target    target
	maxExpiry time.Duration
}

// New returns a URLSigner that signs with s.
func New(s Signer, opts *Options) (*URLSigner, error) {
	if s == nil {
		return nil, &InputError{Field: "signer", Reason: "no signer configured"}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Region == "" {
		o.Region = "auto"
	}
	cred := s.Credential()
	if cred.Identity == "" {
		return nil, &InputError{Field: "signer", Reason: "signer has no identity (service-account email or access ID)"}
	}
	alg, err := o.Dialect.Algorithm(cred.Kind)
	if err != nil {
		return nil, err
	}
	maxExpiry := MaxExpiry
	if cred.Keyless && !o.AllowLongKeyless {
		maxExpiry = KeylessExpiry
	}
	return &URLSigner{
		signer:    s,
		cred:      cred,
		algorithm: alg,
		dialect:   o.Dialect,
		region:    o.Region,
		target:    o.Endpoint.resolve(o.Dialect, o.Region),
		maxExpiry: maxExpiry,
	}, nil
}

// Credential describes the signer behind u.
func (u *URLSigner) Credential() Credential { return u.cred }

// Dialect is the V4 dialect u signs in.
func (u *URLSigner) Dialect() Dialect { return u.dialect }

// MaxExpiry is the longest lifetime u will sign.
func (u *URLSigner) MaxExpiry() time.Duration { return u.maxExpiry }

// Request describes one URL to sign.
type Request struct {
	// Method is GET, HEAD, PUT, POST, DELETE or RESUMABLE (a POST that starts
	// a resumable upload, with x-goog-resumable: start signed in).
	Method string
	Bucket string
	// Object may be empty for a bucket-level URL (e.g. listing).
	Object string
	// Headers the client must send, signed in. A x-goog-content-sha256 /
	// x-amz-content-sha256 header makes the payload hash signed.
	Headers []Header
	// Query parameters added to the URL and signed in, e.g.
	// response-content-disposition.
	Query []Param
	// Expires is the lifetime, from MinExpiry to u.MaxExpiry().
	Expires time.Duration
	// Time is the signing time (X-Goog-Date); it must be set.
	Time time.Time
}

// SignedURL is an issued link.
type SignedURL struct {
	URL string
	// Method is the HTTP method the client must use (POST for RESUMABLE).
	Method string
	// Headers are the signed headers the client must send, host excepted.
	Headers []Header
	// Expires is when the link stops working.
	Expires time.Time
}

// Prepared is a request canonicalized and ready to be signed: the pure part
// of signing, exposed for verification and tests.
type Prepared struct {
	Canonical    CanonicalRequest
	Scope        Scope
	StringToSign string
	// base is the URL up to and including the canonical query string.
	base    string
	method  string
	headers []Header
	expires time.Time
}

// Prepare validates r and builds its canonical request and string-to-sign.
// It performs no I/O.
func (u *URLSigner) Prepare(r Request) (*Prepared, error) {
	method, err := u.checkRequest(&r)
	if err != nil {
		return nil, err
	}
	headers := r.Headers
	if strings.EqualFold(r.Method, "RESUMABLE") {
		headers = append(append(make([]Header, 0, len(headers)+1), headers...), Header{"x-goog-resumable", "start"})
	}
	urlHost, signHost, path := u.target.place(r.Bucket)
	if r.Object != "" {
		path += "/" + EscapePath(r.Object)
	} else if path == "" {
		path = "/"
	}
	all := make([]Header, 0, len(headers)+1)
	all = append(all, Header{"host", signHost})
	for _, h := range headers {
		if strings.EqualFold(strings.TrimSpace(h.Name), "host") {
			continue // the URL decides the host
		}
		all = append(all, h)
	}
	canonHeaders := CanonicalHeaders(all)

	ts := r.Time.UTC()
	scope := NewScope(u.dialect, ts, u.region)
	p := u.dialect.paramPrefix()
	stamp := ts.Format(dateTimeFormat)
	query := make([]Param, 0, len(r.Query)+5)
	query = append(query,
		Param{p + "Algorithm", u.algorithm},
		Param{p + "Credential", u.cred.Identity + "/" + scope.String()},
		Param{p + "Date", stamp},
		Param{p + "Expires", strconv.FormatInt(int64(r.Expires/time.Second), 10)},
		Param{p + "SignedHeaders", SignedHeaders(canonHeaders)},
	)
	query = append(query, r.Query...)

	prep := &Prepared{
		Canonical: CanonicalRequest{
			Method:      method,
			Path:        path,
			Query:       query,
			Headers:     canonHeaders,
			PayloadHash: payloadHash(canonHeaders, u.dialect),
		},
		Scope:   scope,
		method:  method,
		expires: ts.Add(r.Expires),
	}
	cr := prep.Canonical.String()
	prep.StringToSign = StringToSign(u.algorithm, stamp, scope, cr)
	// The canonical query is the URL's query; recompute it cheaply from cr.
	q := cr[len(method)+1+len(path)+1:]
	q = q[:strings.IndexByte(q, '\n')]
	prep.base = u.target.scheme + "://" + urlHost + path + "?" + q
	for _, h := range canonHeaders {
		if h.Name != "host" {
			prep.headers = append(prep.headers, h)
		}
	}
	return prep, nil
}

// SignedURL assembles the final link from prepared and the signature bytes.
func (u *URLSigner) SignedURL(prep *Prepared, signature []byte) *SignedURL {
	p := u.dialect.paramPrefix()
	var b strings.Builder
	b.Grow(len(prep.base) + len(p) + 11 + 2*len(signature))
	b.WriteString(prep.base)
	b.WriteByte('&')
	b.WriteString(p)
	b.WriteString("Signature=")
	b.WriteString(hex.EncodeToString(signature))
	return &SignedURL{URL: b.String(), Method: prep.method, Headers: prep.headers, Expires: prep.expires}
}

// Sign validates r, signs it and returns the link.
func (u *URLSigner) Sign(ctx context.Context, r Request) (*SignedURL, error) {
	prep, err := u.Prepare(r)
	if err != nil {
		return nil, err
	}
	sig, err := u.signer.Sign(ctx, prep.Scope, []byte(prep.StringToSign))
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", Resource(u.dialect, r.Bucket, r.Object), err)
	}
	return u.SignedURL(prep, sig), nil
}

// Resource renders gs://BUCKET/OBJECT or s3://BUCKET/KEY, for messages.
func Resource(d Dialect, bucket, object string) string {
	if d == AWS4 {
		return "s3://" + bucket + "/" + object
	}
	return "gs://" + bucket + "/" + object
}

func (u *URLSigner) checkRequest(r *Request) (method string, err error) {
	method = strings.ToUpper(r.Method)
	switch method {
	case "GET", "HEAD", "PUT", "POST", "DELETE":
	case "RESUMABLE":
		if u.dialect != GOOG4 {
			return "", &InputError{Field: "method", Reason: "RESUMABLE exists only for Google Cloud Storage"}
		}
		method = "POST"
	case "":
		return "", &InputError{Field: "method", Reason: "missing"}
	default:
		return "", &InputError{Field: "method", Reason: "must be GET, HEAD, PUT, POST, DELETE or RESUMABLE, got " + quote(r.Method)}
	}
	if err := ValidateBucket(u.dialect, r.Bucket); err != nil {
		return "", err
	}
	if r.Object != "" {
		if err := ValidateObject(r.Object); err != nil {
			return "", err
		}
	}
	if r.Time.IsZero() {
		return "", &InputError{Field: "time", Reason: "signing time is not set"}
	}
	if err := CheckExpiry(r.Expires, u.maxExpiry); err != nil {
		return "", err
	}
	for _, h := range r.Headers {
		if err := validateHeader(h); err != nil {
			return "", err
		}
	}
	return method, nil
}

// CheckExpiry reports whether d is a whole number of seconds between
// MinExpiry and limit.
func CheckExpiry(d, limit time.Duration) error {
	switch {
	case d < MinExpiry:
		return &InputError{Field: "expires", Reason: fmt.Sprintf("%s is shorter than the minimum of 1s", d)}
	case d > limit:
		why := "the maximum"
		if limit == KeylessExpiry {
			why = "the keyless maximum (signBlob keys are only guaranteed for 12h; see AllowLongKeyless)"
		}
		return &InputError{Field: "expires", Reason: fmt.Sprintf("%s is longer than %s of %s", d, why, limit)}
	case d%time.Second != 0:
		return &InputError{Field: "expires", Reason: fmt.Sprintf("%s is not a whole number of seconds", d)}
	}
	return nil
}

func payloadHash(headers []Header, d Dialect) string {
	name := "x-goog-content-sha256"
	if d == AWS4 {
		name = "x-amz-content-sha256"
	}
	for _, h := range headers {
		if h.Name == name {
			return h.Value
		}
	}
	return UnsignedPayload
}

func quote(s string) string { return strconv.Quote(s) }
