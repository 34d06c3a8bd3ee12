package sign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
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
	// scopeSuffix is "/REGION/SERVICE/TERMINATOR".
	scopeSuffix string
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
		signer:      s,
		cred:        cred,
		algorithm:   alg,
		dialect:     o.Dialect,
		region:      o.Region,
		target:      o.Endpoint.resolve(o.Dialect, o.Region),
		maxExpiry:   maxExpiry,
		scopeSuffix: "/" + o.Region + "/" + Scope{Dialect: o.Dialect}.Service() + "/" + Scope{Dialect: o.Dialect}.Terminator(),
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
	// sts is StringToSign's bytes, shared with it: Signers must not modify
	// what they sign.
	sts []byte
	// arena holds every string Prepare made. Its tail, from urlAt, is the
	// URL up to and including the canonical query; the first SignedURL
	// appends the signature there in place (taken guards it), so one
	// allocation carries the request from canonical form to finished link.
	arena   []byte
	urlAt   int
	taken   atomic.Bool
	method  string
	headers []Header
	expires time.Time

	// Backing arrays for the usual request (a few headers and query
	// parameters) and the link itself, so that they cost no allocation of
	// their own.
	queryArr  [7]Param
	allArr    [3]Header
	headerArr [2]Header
	link      SignedURL
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
	prep := &Prepared{method: method}

	// The arena holds every string Prepare makes and then the URL; strings
	// are cut from it and never written again (a reallocation leaves them
	// on the old array). Its size is an upper bound for the usual request.
	userLen := 0
	for _, q := range r.Query {
		userLen += len(q.Name) + len(q.Value) + 2
	}
	for _, h := range headers {
		userLen += len(h.Name) + 1
	}
	hostLen := len(u.target.host) + len(u.target.signHost) + 2*len(r.Bucket) + 2
	pathLen := 3*len(r.Bucket) + 3*len(r.Object) + 2
	credLen := len(u.cred.Identity) + 9 + len(u.scopeSuffix)
	arena := make([]byte, 0, hostLen+2*pathLen+4*credLen+3*userLen+2*len(u.algorithm)+len(u.target.scheme)+
		160+3*u.signatureLen())
	cut := func(from int) string { return unsafeString(arena[from:len(arena):len(arena)]) }

	urlHost, signHost := u.target.host, u.target.signHost
	if u.target.style == VirtualHostedStyle {
		at := len(arena)
		arena = append(arena, r.Bucket...)
		arena = append(arena, '.')
		arena = append(arena, u.target.host...)
		urlHost = cut(at)
		if strings.HasPrefix(u.target.host, u.target.signHost) { // the port is a suffix: share the string
			signHost = urlHost[:len(r.Bucket)+1+len(u.target.signHost)]
		} else {
			at = len(arena)
			arena = append(arena, r.Bucket...)
			arena = append(arena, '.')
			arena = append(arena, u.target.signHost...)
			signHost = cut(at)
		}
	}
	at := len(arena)
	if u.target.style == PathStyle {
		arena = append(arena, '/')
		arena = appendEscape(arena, r.Bucket, true)
	}
	if r.Object != "" {
		arena = append(arena, '/')
		arena = appendEscape(arena, r.Object, true)
	}
	path := cut(at)
	if path == "" {
		path = "/"
	}
	all := prep.allArr[:0]
	all = append(all, Header{"host", signHost})
	for _, h := range headers {
		if strings.EqualFold(strings.TrimSpace(h.Name), "host") {
			continue // the URL decides the host
		}
		all = append(all, h)
	}
	canonHeaders := canonicalHeaders(all[:0], all)

	ts := r.Time.UTC().Truncate(time.Second) // X-Goog-Date has whole seconds
	at = len(arena)
	arena = appendStamp(arena, ts)
	stamp := cut(at)
	scope := Scope{Dialect: u.dialect, Date: stamp[:8], Region: u.region}
	// One string holds IDENTITY/DATE/REGION/SERVICE/TERMINATOR; the scope
	// is its tail.
	at = len(arena)
	arena = append(arena, u.cred.Identity...)
	arena = append(arena, '/')
	arena = append(arena, stamp[:8]...)
	arena = append(arena, u.scopeSuffix...)
	credential := cut(at)
	scopeString := credential[len(u.cred.Identity)+1:]
	at = len(arena)
	arena = strconv.AppendInt(arena, int64(r.Expires/time.Second), 10)
	expires := cut(at)
	at = len(arena)
	for i, h := range canonHeaders {
		if i > 0 {
			arena = append(arena, ';')
		}
		arena = append(arena, h.Name...)
	}
	signed := cut(at)
	n := &paramNames[u.dialect]
	query := prep.queryArr[:0]
	query = append(query,
		Param{n[0], u.algorithm},
		Param{n[1], credential},
		Param{n[2], stamp},
		Param{n[3], expires},
		Param{n[4], signed},
	)
	query = append(query, r.Query...)
	payload := payloadHash(canonHeaders, u.dialect)

	// The canonical request is written once, hashed, and its query part
	// reused as the URL's query.
	var crArr [1024]byte
	cr := append(crArr[:0], method...)
	cr = append(cr, '\n')
	cr = append(cr, path...)
	cr = append(cr, '\n')
	qStart := len(cr)
	cr = appendCanonicalQuery(cr, query)
	qEnd := len(cr)
	cr = append(cr, '\n')
	for _, h := range canonHeaders {
		cr = append(cr, h.Name...)
		cr = append(cr, ':')
		cr = append(cr, h.Value...)
		cr = append(cr, '\n')
	}
	cr = append(cr, '\n')
	cr = append(cr, signed...)
	cr = append(cr, '\n')
	cr = append(cr, payload...)
	sum := sha256.Sum256(cr)

	at = len(arena)
	arena = append(arena, u.algorithm...)
	arena = append(arena, '\n')
	arena = append(arena, stamp...)
	arena = append(arena, '\n')
	arena = append(arena, scopeString...)
	arena = append(arena, '\n')
	arena = hex.AppendEncode(arena, sum[:])
	sts := cut(at)
	stsBytes := arena[at:len(arena):len(arena)]

	// The URL comes last, so that the signature can follow it in place.
	urlAt := len(arena)
	arena = append(arena, u.target.scheme...)
	arena = append(arena, "://"...)
	arena = append(arena, urlHost...)
	arena = append(arena, path...)
	arena = append(arena, '?')
	arena = append(arena, cr[qStart:qEnd]...)

	prep.Canonical = CanonicalRequest{
		Method:      method,
		Path:        path,
		Query:       query,
		Headers:     canonHeaders,
		PayloadHash: payload,
	}
	prep.Scope = scope
	prep.StringToSign = sts
	prep.sts = stsBytes
	prep.arena = arena
	prep.urlAt = urlAt
	prep.expires = ts.Add(r.Expires)
	if len(canonHeaders) > 1 {
		prep.headers = prep.headerArr[:0]
		for _, h := range canonHeaders {
			if h.Name != "host" {
				prep.headers = append(prep.headers, h)
			}
		}
	}
	return prep, nil
}

// signatureLen is the usual raw signature length of u's signer, for sizing.
func (u *URLSigner) signatureLen() int {
	if u.cred.Kind == KindHMAC {
		return sha256.Size
	}
	return 256 // RSA-2048
}

// paramNames are the signing parameters' names per dialect, built once.
var paramNames = [...][5]string{
	GOOG4: {"X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-SignedHeaders"},
	AWS4:  {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"},
}

// unsafeString turns a buffer this package no longer writes into a string
// without copying it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// linkBuffer returns the URL so far with "&X-...-Signature=" appended, for
// the signature to follow. The first caller writes in place after the
// arena; later ones (a Prepared signed twice) get a copy.
func (u *URLSigner) linkBuffer(prep *Prepared, sigLen int) (b []byte, first bool) {
	p := u.dialect.paramPrefix()
	first = prep.taken.CompareAndSwap(false, true)
	if first {
		b = prep.arena
	} else {
		b = make([]byte, 0, len(prep.arena)-prep.urlAt+len(p)+11+2*sigLen)
		b = append(b, prep.arena[prep.urlAt:]...)
	}
	b = append(b, '&')
	b = append(b, p...)
	return append(b, "Signature="...), first
}

// finish wraps the finished URL bytes b (from linkBuffer) in a SignedURL.
func (u *URLSigner) finish(prep *Prepared, b []byte, first bool) *SignedURL {
	l := &prep.link
	if !first {
		l = new(SignedURL)
	}
	*l = SignedURL{Method: prep.method, Headers: prep.headers, Expires: prep.expires}
	if first {
		l.URL = unsafeString(b[prep.urlAt:])
	} else {
		l.URL = unsafeString(b)
	}
	return l
}

// SignedURL assembles the final link from prepared and the signature bytes.
func (u *URLSigner) SignedURL(prep *Prepared, signature []byte) *SignedURL {
	b, first := u.linkBuffer(prep, len(signature))
	b = hex.AppendEncode(b, signature)
	return u.finish(prep, b, first)
}

// Sign validates r, signs it and returns the link.
func (u *URLSigner) Sign(ctx context.Context, r Request) (*SignedURL, error) {
	prep, err := u.Prepare(r)
	if err != nil {
		return nil, err
	}
	as, ok := u.signer.(AppendSigner)
	if !ok {
		sig, err := u.signer.Sign(ctx, prep.Scope, prep.sts)
		if err != nil {
			return nil, fmt.Errorf("sign %s: %w", Resource(u.dialect, r.Bucket, r.Object), err)
		}
		return u.SignedURL(prep, sig), nil
	}
	// The raw signature is appended after the URL, moved aside and written
	// back as hex in its place: no allocation for the signature.
	b, first := u.linkBuffer(prep, u.signatureLen())
	at := len(b)
	b, err = as.AppendSign(ctx, b, prep.Scope, prep.sts)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", Resource(u.dialect, r.Bucket, r.Object), err)
	}
	var raw [64]byte
	if n := copy(raw[:], b[at:]); n == len(b)-at {
		b = hex.AppendEncode(b[:at], raw[:n])
	} else { // a signature longer than the scratch space
		b = hex.AppendEncode(b[:at], slices.Clone(b[at:]))
	}
	return u.finish(prep, b, first), nil
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

// appendStamp is ts.AppendFormat(dst, dateTimeFormat) without the layout
// interpreter.
func appendStamp(dst []byte, ts time.Time) []byte {
	y, mo, d := ts.Date()
	h, mi, sec := ts.Clock()
	if y < 0 || y > 9999 {
		return ts.AppendFormat(dst, dateTimeFormat)
	}
	var b [16]byte
	put := func(i, v, n int) {
		for k := i + n - 1; k >= i; k-- {
			b[k] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	put(4, int(mo), 2)
	put(6, d, 2)
	b[8] = 'T'
	put(9, h, 2)
	put(11, mi, 2)
	put(13, sec, 2)
	b[15] = 'Z'
	return append(dst, b[:]...)
}
