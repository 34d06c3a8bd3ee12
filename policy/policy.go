// Package policy decides what linkissuer may sign: which buckets and object
// names, which methods, for how long, and which response headers are added.
// A refusal names its reason; nothing outside policy reaches a signer.
//
// A Policy is built once from configuration, validated, and then only read,
// so it is safe for concurrent use.
package policy

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/linkissuer/linkissuer/glob"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// Refusal codes, stable for dead-letter messages and metrics.
const (
	CodeBucketNotAllowed  = "bucket_not_allowed"
	CodeObjectNotAllowed  = "object_not_allowed"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeExpiryOutOfRange  = "expiry_out_of_range"
	CodeContentType       = "content_type_not_allowed"
	CodeInvalidObjectName = "invalid_object_name"
	CodeDotSegment        = string(schema.CodeDotSegment)
)

// Refusal is a request outside policy. It is permanent.
type Refusal struct {
	Code   string
	Reason string
}

func (r *Refusal) Error() string { return "refused by policy (" + r.Code + "): " + r.Reason }

// Config is the policy as configured (flags, environment, or a job).
type Config struct {
	// Allow lists "BUCKET" or "BUCKET/PATTERN" rules. Patterns use the
	// matchGlob syntax of package glob: '*' matches within one path
	// segment, '**' across segments, '?' one character (not byte), [abc]
	// and {a,b} as in Cloud Storage; "BUCKET" alone allows every object in
	// it. Bucket names may use the same wildcards. Empty means nothing is
	// allowed.
	Allow []string
	// Methods allowed; empty means GET only.
	Methods []string
	// DefaultExpiry applies when a request names none (default 15m).
	DefaultExpiry time.Duration
	// MaxExpiry caps requested lifetimes (default 1h; never above the
	// signer's own maximum, which URLSigner enforces).
	MaxExpiry time.Duration
	// ContentTypes, if set, restricts signing to objects whose content type
	// matches one of these patterns ("image/*", "application/pdf").
	ContentTypes []string
	// ResponseParams are query parameters added to every URL, such as
	// response-content-disposition=attachment.
	ResponseParams []sign.Param
	// AllowControlChars permits object names with control characters
	// (U+0000-U+001F, U+007F-U+009F). Off by default: such names are legal in
	// GCS but are usually a sign of a bug, and break many consumers.
	AllowControlChars bool
	// AllowDotSegments permits object names with a "." or ".." segment,
	// also percent-encoded (schema.HasDotSegment). Off by default: a prefix
	// rule would grant "public/../private/secret", which a client or proxy
	// that normalizes paths reads as "private/secret".
	AllowDotSegments bool
}

// Policy is a validated, compiled Config.
type Policy struct {
	rules         []rule
	methods       map[string]bool
	defaultExpiry time.Duration
	maxExpiry     time.Duration
	contentTypes  []glob.Glob
	// untyped: the empty content-type pattern allows objects with none
	// (an empty glob would match every type).
	untyped      bool
	params       []sign.Param
	allowControl bool
	allowDots    bool
}

type rule struct {
	bucket glob.Glob
	object glob.Glob // the zero Glob: any object
}

// New compiles c. It does not modify c.
func New(c Config) (*Policy, error) {
	p := &Policy{
		methods:       map[string]bool{},
		defaultExpiry: c.DefaultExpiry,
		maxExpiry:     c.MaxExpiry,
		params:        append([]sign.Param(nil), c.ResponseParams...),
		allowControl:  c.AllowControlChars,
		allowDots:     c.AllowDotSegments,
	}
	if p.defaultExpiry == 0 {
		p.defaultExpiry = 15 * time.Minute
	}
	if p.maxExpiry == 0 {
		p.maxExpiry = time.Hour
	}
	if p.maxExpiry > sign.MaxExpiry || p.maxExpiry < sign.MinExpiry {
		return nil, fmt.Errorf("policy: max expiry %s outside 1s..7d", p.maxExpiry)
	}
	if p.defaultExpiry > p.maxExpiry || p.defaultExpiry < sign.MinExpiry {
		return nil, fmt.Errorf("policy: default expiry %s outside 1s..max expiry %s", p.defaultExpiry, p.maxExpiry)
	}
	for _, a := range c.Allow {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		bucket, pattern, hasPattern := strings.Cut(a, "/")
		if bucket == "" {
			return nil, fmt.Errorf("policy: allow rule %q has no bucket", a)
		}
		var r rule
		var err error
		if r.bucket, err = glob.Compile(bucket); err != nil {
			return nil, fmt.Errorf("policy: allow rule %q: %w", a, err)
		}
		if hasPattern && pattern != "" && pattern != "**" {
			if r.object, err = glob.Compile(pattern); err != nil {
				return nil, fmt.Errorf("policy: allow rule %q: %w", a, err)
			}
		}
		p.rules = append(p.rules, r)
	}
	methods := c.Methods
	if len(methods) == 0 {
		methods = []string{"GET"}
	}
	for _, m := range methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if !sign.ValidMethod(m) {
			return nil, fmt.Errorf("policy: unknown method %q (want one of %s)", m, sign.MethodList)
		}
		p.methods[m] = true
	}
	for _, ct := range c.ContentTypes {
		ct = strings.ToLower(strings.TrimSpace(ct))
		if ct == "" {
			p.untyped = true
			continue
		}
		g, err := glob.Compile(ct)
		if err != nil {
			return nil, fmt.Errorf("policy: content type %q: %w", ct, err)
		}
		p.contentTypes = append(p.contentTypes, g)
	}
	return p, nil
}

// Request is what a caller wants signed.
type Request struct {
	Bucket      string
	Object      string
	Method      string
	ContentType string
	// Expires is the requested lifetime; zero means the policy default.
	Expires time.Duration
}

// Grant is what the policy allows for a request.
type Grant struct {
	Method  string
	Expires time.Duration
	// Query holds the response parameters to sign into the URL.
	Query []sign.Param
}

// Check decides r. The error, if any, is a *Refusal.
func (p *Policy) Check(r Request) (Grant, error) {
	if !p.allowControl && HasControlChars(r.Object) {
		return Grant{}, &Refusal{CodeInvalidObjectName, fmt.Sprintf("object name %q contains control characters", r.Object)}
	}
	if !p.allowDots && schema.HasDotSegment(r.Object) {
		return Grant{}, &Refusal{CodeDotSegment, fmt.Sprintf("object name %q has a . or .. segment", r.Object)}
	}
	if !p.bucketAllowed(r.Bucket) {
		return Grant{}, &Refusal{CodeBucketNotAllowed, fmt.Sprintf("bucket %q is not in the allow list", r.Bucket)}
	}
	if !p.objectAllowed(r.Bucket, r.Object) {
		return Grant{}, &Refusal{CodeObjectNotAllowed, fmt.Sprintf("object %q in bucket %q matches no allowed prefix", r.Object, r.Bucket)}
	}
	method := strings.ToUpper(r.Method)
	if method == "" {
		method = "GET"
	}
	if !p.methods[method] {
		return Grant{}, &Refusal{CodeMethodNotAllowed, fmt.Sprintf("method %s is not allowed", method)}
	}
	exp := r.Expires
	if exp == 0 {
		exp = p.defaultExpiry
	}
	if exp < sign.MinExpiry || exp > p.maxExpiry {
		return Grant{}, &Refusal{CodeExpiryOutOfRange, fmt.Sprintf("expiry %s is outside 1s..%s", exp, p.maxExpiry)}
	}
	if ct := strings.ToLower(r.ContentType); (len(p.contentTypes) > 0 || p.untyped) && !(ct == "" && p.untyped) && !matchAny(p.contentTypes, ct) {
		return Grant{}, &Refusal{CodeContentType, fmt.Sprintf("content type %q is not allowed", r.ContentType)}
	}
	return Grant{Method: method, Expires: exp, Query: p.params}, nil
}

// MaxExpiry is the longest lifetime the policy grants.
func (p *Policy) MaxExpiry() time.Duration { return p.maxExpiry }

func (p *Policy) bucketAllowed(bucket string) bool {
	for _, r := range p.rules {
		if r.bucket.Match(bucket) {
			return true
		}
	}
	return false
}

func (p *Policy) objectAllowed(bucket, object string) bool {
	for _, r := range p.rules {
		if r.bucket.Match(bucket) && r.object.Match(object) {
			return true
		}
	}
	return false
}

// HasControlChars reports whether s contains C0 or C1 control characters.
func HasControlChars(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

func matchAny(globs []glob.Glob, s string) bool {
	for _, g := range globs {
		if g.Match(s) {
			return true
		}
	}
	return false
}
