package revocation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Version is the list format version.
const Version = 1

// Bounds of a list: a longer document or more entries are refused before
// (bytes) or while (entries) it is decoded.
const (
	MaxBytes   = 8 << 20
	MaxEntries = 100_000
	maxNote    = 256
	maxObject  = 1024
	maxBucket  = 222
)

// ErrInvalid is what Parse's and Validate's errors match.
var ErrInvalid = errors.New("revocation: invalid list")

// List is the revocation list as stored.
type List struct {
	Version int `json:"version"`
	// Updated is when the list was last written.
	Updated time.Time `json:"updated,omitzero"`
	// Before revokes every durable link issued before it (zero: none).
	Before   time.Time `json:"before,omitzero"`
	Tokens   []Token   `json:"tokens,omitempty"`
	Objects  []Object  `json:"objects,omitempty"`
	Prefixes []Prefix  `json:"prefixes,omitempty"`
}

// Token revokes one durable link by its id.
type Token struct {
	ID    string    `json:"id"`
	Added time.Time `json:"added"`
	Note  string    `json:"note,omitempty"`
}

// Object revokes every durable link to one object.
type Object struct {
	Bucket string    `json:"bucket"`
	Object string    `json:"object"`
	Added  time.Time `json:"added"`
	Note   string    `json:"note,omitempty"`
}

// Prefix revokes every durable link to an object whose name starts with
// Prefix; an empty Prefix is the whole bucket.
type Prefix struct {
	Bucket string    `json:"bucket"`
	Prefix string    `json:"prefix"`
	Added  time.Time `json:"added"`
	Note   string    `json:"note,omitempty"`
}

// Parse decodes and validates a stored list. It refuses more than MaxBytes
// before decoding, unknown fields, trailing data and a version other than
// Version.
func Parse(data []byte) (*List, error) {
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(data), MaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l List
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the list", ErrInvalid)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// Validate checks l without changing it.
func (l *List) Validate() error {
	if l.Version != Version {
		return fmt.Errorf("%w: version %d, this build reads %d", ErrInvalid, l.Version, Version)
	}
	if n := l.Len(); n > MaxEntries {
		return fmt.Errorf("%w: %d entries, at most %d", ErrInvalid, n, MaxEntries)
	}
	for i, t := range l.Tokens {
		if err := ValidTokenID(t.ID); err != nil {
			return fmt.Errorf("%w: tokens[%d]: %w", ErrInvalid, i, err)
		}
		if len(t.Note) > maxNote {
			return fmt.Errorf("%w: tokens[%d]: note over %d bytes", ErrInvalid, i, maxNote)
		}
	}
	for i, o := range l.Objects {
		if err := validBucket(o.Bucket); err != nil {
			return fmt.Errorf("%w: objects[%d]: %w", ErrInvalid, i, err)
		}
		if o.Object == "" || len(o.Object) > maxObject {
			return fmt.Errorf("%w: objects[%d]: object name must be 1..%d bytes", ErrInvalid, i, maxObject)
		}
		if len(o.Note) > maxNote {
			return fmt.Errorf("%w: objects[%d]: note over %d bytes", ErrInvalid, i, maxNote)
		}
	}
	for i, p := range l.Prefixes {
		if err := validBucket(p.Bucket); err != nil {
			return fmt.Errorf("%w: prefixes[%d]: %w", ErrInvalid, i, err)
		}
		if len(p.Prefix) > maxObject {
			return fmt.Errorf("%w: prefixes[%d]: prefix over %d bytes", ErrInvalid, i, maxObject)
		}
		if len(p.Note) > maxNote {
			return fmt.Errorf("%w: prefixes[%d]: note over %d bytes", ErrInvalid, i, maxNote)
		}
	}
	return nil
}

// Len is the number of entries (Before counts as one).
func (l *List) Len() int {
	n := len(l.Tokens) + len(l.Objects) + len(l.Prefixes)
	if !l.Before.IsZero() {
		n++
	}
	return n
}

// Marshal encodes l, indented so that a list read with gcloud is legible.
func (l *List) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(l); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ValidTokenID checks a durable-link token id: 24..32 lower-case hex
// digits (durable.NewID makes 32).
func ValidTokenID(id string) error {
	if len(id) < 24 || len(id) > 32 {
		return fmt.Errorf("token id %.40q: want 24..32 hex digits", id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("token id %.40q: want 24..32 lower-case hex digits", id)
		}
	}
	return nil
}

func validBucket(b string) error {
	if b == "" || len(b) > maxBucket || strings.ContainsAny(b, "/ ") {
		return fmt.Errorf("bucket %.64q is not a bucket name", b)
	}
	return nil
}

// Change is one addition to a list.
type Change struct {
	TokenID string
	// Bucket with Object revokes one object; with Prefix (IsPrefix) the
	// objects under it.
	Bucket   string
	Object   string
	Prefix   string
	IsPrefix bool
	// Before revokes every link issued before it; a list keeps the
	// latest such instant.
	Before time.Time
	Note   string
}

// Apply adds c to l at time now; adding an entry already present changes
// nothing (Apply reports false), so retried writes are idempotent.
func (l *List) Apply(c Change, now time.Time) (bool, error) {
	now = now.UTC().Truncate(time.Second)
	changed := false
	switch {
	case c.TokenID != "":
		if err := ValidTokenID(c.TokenID); err != nil {
			return false, err
		}
		if !slices.ContainsFunc(l.Tokens, func(t Token) bool { return t.ID == c.TokenID }) {
			l.Tokens = append(l.Tokens, Token{ID: c.TokenID, Added: now, Note: c.Note})
			changed = true
		}
	case c.IsPrefix:
		if !slices.ContainsFunc(l.Prefixes, func(p Prefix) bool { return p.Bucket == c.Bucket && p.Prefix == c.Prefix }) {
			l.Prefixes = append(l.Prefixes, Prefix{Bucket: c.Bucket, Prefix: c.Prefix, Added: now, Note: c.Note})
			changed = true
		}
	case c.Bucket != "":
		if !slices.ContainsFunc(l.Objects, func(o Object) bool { return o.Bucket == c.Bucket && o.Object == c.Object }) {
			l.Objects = append(l.Objects, Object{Bucket: c.Bucket, Object: c.Object, Added: now, Note: c.Note})
			changed = true
		}
	case !c.Before.IsZero():
		if c.Before.After(l.Before) {
			l.Before = c.Before.UTC()
			changed = true
		}
	default:
		return false, errors.New("revocation: empty change")
	}
	if changed {
		l.Updated = now
	}
	return changed, l.Validate()
}
