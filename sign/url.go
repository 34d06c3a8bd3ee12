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
	// credPrefix and scopeSuffix are "IDENTITY/" and scopeSuffix as the
	// query escapes them.
	escaped struct{ credPrefix, scopeSuffix string }
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
	u := &URLSigner{
		signer:      s,
		cred:        cred,
		algorithm:   alg,
		dialect:     o.Dialect,
		region:      o.Region,
		target:      o.Endpoint.resolve(o.Dialect, o.Region),
		maxExpiry:   maxExpiry,
		scopeSuffix: "/" + o.Region + "/" + Scope{Dialect: o.Dialect}.Service() + "/" + Scope{Dialect: o.Dialect}.Terminator(),
	}
	u.escaped.credPrefix = Escape(cred.Identity + "/")
	u.escaped.scopeSuffix = Escape(u.scopeSuffix)
	return u, nil
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

	b built
	// taken says the first link was written into b's arena in place;
	// later ones are copies.
	taken atomic.Bool
	link  SignedURL
	// Backing arrays for the usual request's query parameters and
	// headers, so that they cost no allocation of their own.
	queryArr [7]Param
	allArr   [3]Header
}

// built is a request in canonical form. Its strings live in arena, whose
// tail from urlAt is the URL up to and including the canonical query: the
// signature is appended there in place, so one allocation carries the
// request from canonical form to finished link.
type built struct {
	method string
	scope  Scope
	// sts is the string-to-sign, shared with the arena: Signers must not
	// modify what they sign.
	sts     []byte
	arena   []byte
	urlAt   int
	expires time.Time
}

// Prepare validates r and builds its canonical request and string-to-sign.
// It performs no I/O.
func (u *URLSigner) Prepare(r Request) (*Prepared, error) {
	prep := &Prepared{}
	c, b, err := u.build(&r, prep.queryArr[:0], prep.allArr[:0])
	if err != nil {
		return nil, err
	}
	prep.b = b
	prep.Canonical = c
	prep.Scope = b.scope
	prep.StringToSign = unsafeString(b.sts)
	return prep, nil
}

// build validates r and canonicalizes it, appending its query parameters
// to query and its headers (host first) to headers: callers pass backing
// arrays that fit the usual request. Those arrays end up only in the
// CanonicalRequest, so that a caller can keep them on its stack.
func (u *URLSigner) build(r *Request, query []Param, headers []Header) (CanonicalRequest, built, error) {
	method, err := u.checkRequest(r)
	if err != nil {
		return CanonicalRequest{}, built{}, err
	}
	in := r.Headers
	if strings.EqualFold(r.Method, MethodResumable) {
		in = append(append(make([]Header, 0, len(in)+1), in...), resumableHeader)
	}

	// The arena holds every string build makes and then the URL; strings
	// are cut from it and never written again (a reallocation leaves them
	// on the old array). Its size is an upper bound for the usual request.
	userLen := 0
	for _, q := range r.Query {
		userLen += len(q.Name) + len(q.Value) + 2
	}
	for _, h := range in {
		userLen += len(h.Name) + 1
	}
	hostLen := len(u.target.host) + len(u.target.signHost) + 2*len(r.Bucket) + 2
	pathLen := 3*len(r.Bucket) + 3*len(r.Object) + 2
	credLen := len(u.cred.Identity) + 9 + len(u.scopeSuffix)
	arena := make([]byte, 0, hostLen+2*pathLen+3*credLen+3*userLen+2*len(u.algorithm)+len(u.target.scheme)+
		144+3*u.signatureLen())
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
	headers = append(headers, Header{"host", signHost})
	for _, h := range in {
		if strings.EqualFold(strings.TrimSpace(h.Name), "host") {
			continue // the URL decides the host
		}
		headers = append(headers, h)
	}
	canonHeaders := headers // host alone is canonical already
	if len(headers) > 1 {
		canonHeaders = canonicalHeaders(headers[:0], headers)
	}

	ts := r.Time.UTC().Truncate(time.Second) // X-Goog-Date has whole seconds
	at = len(arena)
	arena = appendStamp(arena, ts)
	stamp := cut(at)
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
	query = append(query,
		Param{n.algorithm, u.algorithm},
		Param{n.credential, credential},
		Param{n.date, stamp},
		Param{n.expires, expires},
		Param{n.signedHeaders, signed},
	)
	query = append(query, r.Query...)
	payload := payloadHash(canonHeaders, u.dialect)

	// The canonical request is written once, hashed, and its query part
	// reused as the URL's query.
	var crArr [1024]byte
	cr := appendRequestHead(crArr[:0], method, path)
	qStart := len(cr)
	cr = u.appendSigningQuery(cr, signingValues{
		algorithm: u.algorithm, date: stamp[:8], stamp: stamp, expires: expires, signedHeaders: signed,
	}, r.Query)
	qEnd := len(cr)
	cr = appendRequestTail(cr, canonHeaders, signed, payload)
	sum := sha256.Sum256(cr)

	at = len(arena)
	arena = append(arena, u.algorithm...)
	arena = append(arena, '\n')
	arena = append(arena, stamp...)
	arena = append(arena, '\n')
	arena = append(arena, scopeString...)
	arena = append(arena, '\n')
	arena = hex.AppendEncode(arena, sum[:])
	sts := arena[at:len(arena):len(arena)]

	// The URL comes last, so that the signature can follow it in place.
	urlAt := len(arena)
	arena = append(arena, u.target.scheme...)
	arena = append(arena, "://"...)
	arena = append(arena, urlHost...)
	arena = append(arena, path...)
	arena = append(arena, '?')
	arena = append(arena, cr[qStart:qEnd]...)

	return CanonicalRequest{
			Method:      method,
			Path:        path,
			Query:       query,
			Headers:     canonHeaders,
			PayloadHash: payload,
		}, built{
			method:  method,
			scope:   Scope{Dialect: u.dialect, Date: stamp[:8], Region: u.region},
			sts:     sts,
			arena:   arena,
			urlAt:   urlAt,
			expires: ts.Add(r.Expires),
		}, nil
}

// signatureLen is the usual raw signature length of u's signer, for sizing.
func (u *URLSigner) signatureLen() int {
	if u.cred.Kind == KindHMAC {
		return sha256.Size
	}
	return 256 // RSA-2048
}

// signingNames are the names of the signed signing parameters of one
// dialect, in canonical (sorted) order.
type signingNames struct{ algorithm, credential, date, expires, signedHeaders string }

// all lists the names, in canonical order.
func (n *signingNames) all() [5]string {
	return [5]string{n.algorithm, n.credential, n.date, n.expires, n.signedHeaders}
}

// paramNames are the signing parameters' names per dialect, built once.
var paramNames = [...]signingNames{
	GOOG4: {"X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-SignedHeaders"},
	AWS4:  {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"},
}

// signingValues are the signing parameters' values of one request.
type signingValues struct {
	algorithm, date, stamp, expires, signedHeaders string
}

// appendSigningQuery appends the canonical query of a URL being signed:
// the five signing parameters, whose escaped forms are mostly known in
// advance (u.escaped), added by name in their canonical order, merged with
// the caller's parameters, escaped and sorted (checkRequest keeps the
// caller's names out of the signing parameters'). It is built from the
// pieces CanonicalQuery uses.
func (u *URLSigner) appendSigningQuery(dst []byte, v signingValues, user []Param) []byte {
	var spansArr [16]span
	var scratchArr [512]byte
	scratch, spans := scratchArr[:0], spansArr[:0]
	n := &paramNames[u.dialect]
	// Algorithm, date and expiry are unreserved; the credential is
	// IDENTITY/DATE/REGION/SERVICE/TERMINATOR with all but the date
	// escaped once in New; header names joined by ';' are escaped here.
	scratch, spans = addParam(scratch, spans, n.algorithm, queryPart{v.algorithm, true})
	scratch, spans = addParam(scratch, spans, n.credential, queryPart{u.escaped.credPrefix, true}, queryPart{v.date, true}, queryPart{u.escaped.scopeSuffix, true})
	scratch, spans = addParam(scratch, spans, n.date, queryPart{v.stamp, true})
	scratch, spans = addParam(scratch, spans, n.expires, queryPart{v.expires, true})
	scratch, spans = addParam(scratch, spans, n.signedHeaders, queryPart{v.signedHeaders, false})
	pre := len(spans)
	scratch, spans = addParams(scratch, spans, pre, user)
	return mergeSpans(dst, scratch, spans, pre)
}

// unsafeString turns a buffer this package no longer writes into a string
// without copying it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// appendSignatureParam appends "&X-Goog-Signature=" (or X-Amz-).
func (u *URLSigner) appendSignatureParam(b []byte) []byte {
	b = append(b, '&')
	b = append(b, u.dialect.paramPrefix()...)
	return append(b, "Signature="...)
}

// link wraps the finished URL in l, with the headers the client must send:
// the signed ones but host (allocated only when there are any).
func (b *built) link(l *SignedURL, url []byte, signed []Header) *SignedURL {
	var headers []Header
	if len(signed) > 1 {
		headers = make([]Header, 0, len(signed)-1)
		for _, h := range signed {
			if h.Name != "host" {
				headers = append(headers, h)
			}
		}
	}
	*l = SignedURL{URL: unsafeString(url), Method: b.method, Expires: b.expires, Headers: headers}
	return l
}

// SignedURL assembles the final link from prepared and the signature bytes.
// The first link is written into prep's buffer in place; a Prepared signed
// again gets a copy.
func (u *URLSigner) SignedURL(prep *Prepared, signature []byte) *SignedURL {
	var buf []byte
	l := &prep.link
	if prep.taken.CompareAndSwap(false, true) {
		buf = prep.b.arena[prep.b.urlAt:]
	} else {
		buf = append(make([]byte, 0, len(prep.b.arena)-prep.b.urlAt+32+2*len(signature)), prep.b.arena[prep.b.urlAt:]...)
		l = new(SignedURL)
	}
	buf = hex.AppendEncode(u.appendSignatureParam(buf), signature)
	return prep.b.link(l, buf, prep.Canonical.Headers)
}

// Sign validates r, signs it and returns the link. The request is built on
// the stack and the signature goes straight into the link's buffer: a link
// costs its buffer and its SignedURL (and, with an AppendSigner such as
// HMACSigner, nothing for the signature).
func (u *URLSigner) Sign(ctx context.Context, r Request) (*SignedURL, error) {
	var queryArr [7]Param
	var allArr [3]Header
	c, b, err := u.build(&r, queryArr[:0], allArr[:0])
	if err != nil {
		return nil, err
	}
	url := u.appendSignatureParam(b.arena[b.urlAt:])
	at := len(url)
	if as, ok := u.signer.(AppendSigner); ok {
		// The raw signature is appended after the URL, moved aside and
		// written back as hex in its place.
		url, err = as.AppendSign(ctx, url, b.scope, b.sts)
		if err == nil {
			var raw [64]byte
			if n := copy(raw[:], url[at:]); n == len(url)-at {
				url = hex.AppendEncode(url[:at], raw[:n])
			} else { // a signature longer than the scratch space
				url = hex.AppendEncode(url[:at], slices.Clone(url[at:]))
			}
		}
	} else {
		var sig []byte
		if sig, err = u.signer.Sign(ctx, b.scope, b.sts); err == nil {
			url = hex.AppendEncode(url, sig)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", Resource(u.dialect, r.Bucket, r.Object), err)
	}
	return b.link(new(SignedURL), url, c.Headers), nil
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
	switch {
	case method == MethodResumable:
		if u.dialect != GOOG4 {
			return "", &InputError{Field: "method", Reason: "RESUMABLE exists only for Google Cloud Storage"}
		}
		method = "POST"
	case method == "":
		return "", &InputError{Field: "method", Reason: "missing"}
	case !ValidMethod(method):
		return "", &InputError{Field: "method", Reason: "must be one of " + MethodList + ", got " + quote(r.Method)}
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
	for _, q := range r.Query {
		if len(q.Name) > 6 && strings.EqualFold(q.Name[:6], u.dialect.paramPrefix()[:6]) {
			// X-Goog-* / X-Amz-*: the signing parameters' namespace.
			for _, n := range paramNames[u.dialect].all() {
				if strings.EqualFold(q.Name, n) {
					return "", &InputError{Field: "query", Reason: quote(q.Name) + " is a signing parameter; it cannot be set"}
				}
			}
			if strings.EqualFold(q.Name, u.dialect.paramPrefix()+"Signature") {
				return "", &InputError{Field: "query", Reason: quote(q.Name) + " is a signing parameter; it cannot be set"}
			}
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
			why = "the keyless maximum (signBlob keys are only guaranteed for 12h)"
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
