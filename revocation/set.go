package revocation

import (
	"slices"
	"time"
)

// Reasons Set.Revoked reports.
const (
	ReasonToken  = "token"
	ReasonObject = "object"
	ReasonPrefix = "prefix"
	ReasonBefore = "before"
)

// Set is a list compiled for lookups: a click costs map lookups, at most
// one per distinct prefix length of its bucket, never a scan of the list.
type Set struct {
	tokens   map[string]struct{}
	objects  map[objectKey]struct{}
	prefixes map[string]*bucketPrefixes
	before   time.Time
	n        int
}

type objectKey struct{ bucket, object string }

type bucketPrefixes struct {
	set  map[string]struct{}
	lens []int // distinct prefix lengths, ascending
}

// Compile builds the Set of l (which Parse or Validate accepted).
func Compile(l *List) *Set {
	s := &Set{tokens: make(map[string]struct{}, len(l.Tokens)), objects: make(map[objectKey]struct{}, len(l.Objects)),
		prefixes: map[string]*bucketPrefixes{}, before: l.Before, n: l.Len()}
	for _, t := range l.Tokens {
		s.tokens[t.ID] = struct{}{}
	}
	for _, o := range l.Objects {
		s.objects[objectKey{o.Bucket, o.Object}] = struct{}{}
	}
	for _, p := range l.Prefixes {
		b := s.prefixes[p.Bucket]
		if b == nil {
			b = &bucketPrefixes{set: map[string]struct{}{}}
			s.prefixes[p.Bucket] = b
		}
		b.set[p.Prefix] = struct{}{}
		if i, found := slices.BinarySearch(b.lens, len(p.Prefix)); !found {
			b.lens = slices.Insert(b.lens, i, len(p.Prefix))
		}
	}
	return s
}

// Len is the number of entries compiled.
func (s *Set) Len() int { return s.n }

// Revoked returns the reason a durable link is revoked (ReasonToken, ...),
// or "" when it is not.
func (s *Set) Revoked(tokenID, bucket, object string, issuedAt time.Time) string {
	if _, ok := s.tokens[tokenID]; ok {
		return ReasonToken
	}
	if _, ok := s.objects[objectKey{bucket, object}]; ok {
		return ReasonObject
	}
	if b := s.prefixes[bucket]; b != nil {
		for _, n := range b.lens {
			if n > len(object) {
				break
			}
			if _, ok := b.set[object[:n]]; ok {
				return ReasonPrefix
			}
		}
	}
	if issuedAt.Before(s.before) {
		return ReasonBefore
	}
	return ""
}
