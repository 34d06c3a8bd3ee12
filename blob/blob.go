// Package blob is the vocabulary that object stores and their users share:
// what an object is (ObjectInfo, ObjectVersion), how to ask for a listing
// (ListQuery), how to shape a write (WriteOptions), and the two error kinds
// a caller branches on (ErrNotFound, ErrExists).
//
// It holds no behaviour and imports only the standard library, so that the
// stores (gcsstore, s3store) and their consumers (jobs, which owns the
// Source and Store interfaces and states their contract) depend on it and
// not on each other.
package blob

import "time"

// MaxComposeSources is the most sources one compose call takes (GCS's
// limit).
const MaxComposeSources = 32

// DefaultChunkSize is a writer's upload chunk when WriteOptions.ChunkSize
// is 0: the memory one writer holds.
const DefaultChunkSize = 8 << 20

// ObjectInfo describes one object (one generation of it).
type ObjectInfo struct {
	Name string
	// Generation is the object's generation (GCS) or a stable version
	// number; 0 when the store has none.
	Generation int64
	// Size in bytes; -1 when unknown.
	Size        int64
	ContentType string
	Updated     time.Time
}

// ListQuery selects objects of one bucket.
type ListQuery struct {
	Bucket string
	Prefix string
	// StartOffset (inclusive) and EndOffset (exclusive) bound names; empty
	// means unbounded.
	StartOffset, EndOffset string
	// Versions lists every generation, not only live objects.
	Versions bool
	// MatchGlob is a hint (GCS matchGlob syntax); the caller filters again.
	MatchGlob string
	// NamesOnly is a hint that only Name and Generation will be read.
	NamesOnly bool
}

// WriteOptions shape a written or composed object.
type WriteOptions struct {
	// IfAbsent makes Close (or Compose) fail with ErrExists when the object
	// exists.
	IfAbsent bool
	// IfGeneration, when not 0, makes Close (or Compose) fail with
	// ErrExists unless the object's generation is still IfGeneration. Only
	// a store that names generations honours it.
	IfGeneration int64
	ContentType  string
	Metadata     map[string]string
	// ChunkSize is the upload chunk, the memory a writer may hold; 0 means
	// the store's default.
	ChunkSize int
}

// ObjectVersion is one generation of an object and its custom metadata.
type ObjectVersion struct {
	Generation int64
	// Metadata is the object's custom metadata; nil if it has none.
	Metadata map[string]string
}
