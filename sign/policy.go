package sign

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// PostPolicy describes a V4 POST policy: an HTML form that lets a browser
// upload one object directly to the bucket, within the policy's conditions.
type PostPolicy struct {
	Bucket string
	// Object is the key the upload is stored under: the form's "key" field.
	Object string
	// KeyStartsWith, when set, lets the uploader choose the key: the policy
	// requires the key to start with KeyStartsWith instead of equalling
	// Object, and Object (which must start with it) is only the form's
	// initial key. A "${filename}" in the key is replaced by the store with
	// the uploaded file's name.
	KeyStartsWith string
	// Expires is the policy's lifetime (MinExpiry to the signer's maximum).
	Expires time.Duration
	// Time is the signing time; it must be set.
	Time time.Time
	// Fields are extra form fields (acl, cache-control, content-type,
	// success_action_redirect, x-goog-meta-*, ...). Each is also added to the
	// policy as an exact-match condition; they are ordered by name.
	Fields map[string]string
	// Conditions are extra constraints, placed first in the policy.
	Conditions []PolicyCondition
}

// PolicyCondition is one entry of a policy's "conditions" array.
type PolicyCondition struct {
	json string
}

// StartsWith requires form field field (written with its "$", e.g. "$key")
// to start with prefix.
func StartsWith(field, prefix string) PolicyCondition {
	return PolicyCondition{`["starts-with",` + policyString(field) + `,` + policyString(prefix) + `]`}
}

// ContentLengthRange bounds the uploaded object's size in bytes.
func ContentLengthRange(min, max int64) PolicyCondition {
	return PolicyCondition{`["content-length-range",` + strconv.FormatInt(min, 10) + `,` + strconv.FormatInt(max, 10) + `]`}
}

// ExactMatch requires form field field to equal value.
func ExactMatch(field, value string) PolicyCondition {
	return PolicyCondition{`{` + policyString(field) + `:` + policyString(value) + `}`}
}

// PostForm is a signed POST policy: the form's action URL and its fields.
type PostForm struct {
	URL     string
	Fields  map[string]string
	Expires time.Time
	// Policy is the decoded policy document that was signed.
	Policy string
}

// SignPostPolicy signs p and returns the form to post.
func (u *URLSigner) SignPostPolicy(ctx context.Context, p PostPolicy) (*PostForm, error) {
	if err := ValidateBucket(u.dialect, p.Bucket); err != nil {
		return nil, err
	}
	if err := ValidateObject(p.Object); err != nil {
		return nil, err
	}
	keyCond := ExactMatch("key", p.Object)
	if p.KeyStartsWith != "" {
		if !strings.HasPrefix(p.Object, p.KeyStartsWith) {
			return nil, &InputError{Field: "object", Reason: quote(p.Object) + " does not start with the allowed key prefix " + quote(p.KeyStartsWith)}
		}
		keyCond = StartsWith("$key", p.KeyStartsWith)
	}
	if p.Time.IsZero() {
		return nil, &InputError{Field: "time", Reason: "signing time is not set"}
	}
	if err := CheckExpiry(p.Expires, u.maxExpiry); err != nil {
		return nil, err
	}
	ts := p.Time.UTC().Truncate(time.Second)
	scope := NewScope(u.dialect, ts, u.region)
	prefix := strings.ToLower(u.dialect.paramPrefix())
	stamp := ts.Format(dateTimeFormat)
	credential := u.cred.Identity + "/" + scope.String()
	expires := ts.Add(p.Expires)

	names := make([]string, 0, len(p.Fields))
	for name := range p.Fields {
		names = append(names, name)
	}
	sort.Strings(names)

	var doc strings.Builder
	doc.WriteString(`{"conditions":[`)
	conds := make([]string, 0, len(p.Conditions)+len(names)+5)
	for _, c := range p.Conditions {
		conds = append(conds, c.json)
	}
	for _, name := range names {
		conds = append(conds, ExactMatch(name, p.Fields[name]).json)
	}
	conds = append(conds,
		ExactMatch("bucket", p.Bucket).json,
		keyCond.json,
		ExactMatch(prefix+"date", stamp).json,
		ExactMatch(prefix+"credential", credential).json,
		ExactMatch(prefix+"algorithm", u.algorithm).json,
	)
	doc.WriteString(strings.Join(conds, ","))
	doc.WriteString(`],"expiration":`)
	doc.WriteString(policyString(expires.Format(time.RFC3339)))
	doc.WriteString(`}`)

	policy := base64.StdEncoding.EncodeToString([]byte(doc.String()))
	sig, err := u.signer.Sign(ctx, scope, []byte(policy))
	if err != nil {
		return nil, fmt.Errorf("sign POST policy for %s: %w", Resource(u.dialect, p.Bucket, p.Object), err)
	}

	fields := make(map[string]string, len(p.Fields)+6)
	for name, v := range p.Fields {
		fields[name] = v
	}
	fields["key"] = p.Object
	fields[prefix+"algorithm"] = u.algorithm
	fields[prefix+"credential"] = credential
	fields[prefix+"date"] = stamp
	fields[prefix+"signature"] = hex.EncodeToString(sig)
	fields["policy"] = policy

	urlHost, _, path := u.target.place(p.Bucket)
	return &PostForm{
		URL:     u.target.scheme + "://" + urlHost + path + "/",
		Fields:  fields,
		Expires: expires,
		Policy:  doc.String(),
	}, nil
}

// policyString encodes s as a JSON string the way the V4 POST policy
// conformance vectors do: '"', '\' and control characters escaped, and
// every non-ASCII character written as \uXXXX (UTF-16, surrogate pairs
// above U+FFFF). '<', '>', '&' and '/' stay as they are.
func policyString(s string) string {
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	u16 := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(hexDigits[(r>>uint(shift))&0xf])
		}
	}
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			u16(r)
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			u16(0xd800 + (r>>10)&0x3ff)
			u16(0xdc00 + r&0x3ff)
		default:
			u16(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
