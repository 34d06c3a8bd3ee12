package jobs

// Storage contract (read this if you implement a store for another
// backend, e.g. S3).
//
// The jobs package talks to object storage only through the small
// interfaces below; it owns them, the stores implement them. GCS is in
// gcs.go (NewGCS). A job needs:
//
//   - a Source (Lister + Stat) for the bucket it signs, and
//   - a Store for where its manifest goes: Lister (to find its own
//     markers), NewWriter, NewReader, Compose and Delete.
//
// Lister.List must yield the objects of q in ascending byte order of name
// (and, with Versions, every generation of a name together, in any order),
// each (name, generation) exactly once, with Prefix, StartOffset
// (inclusive) and EndOffset (exclusive) applied exactly: shards are key
// ranges [start, end) and the final manifest has each object once only if
// ranges neither overlap nor leave gaps. (S3's StartAfter is exclusive: list
// from a shorter key that sorts before StartOffset and drop names below it.)
// MatchGlob and NamesOnly are hints: a lister may use them to fetch less,
// or ignore them; the caller filters by MatchGlob again. List reads page by
// page as the caller iterates: it must never hold more than a page. After
// yielding an error it stops; an error wrapping ErrNotFound means the
// bucket does not exist.
//
// Store.NewWriter returns a writer whose object appears atomically, whole,
// at a successful Close, replacing any object of that name (last Close
// wins), or, with WriteOptions.IfAbsent, failing Close with an error that
// wraps ErrExists if the name exists (GCS: ifGenerationMatch=0). Cancelling
// the ctx given to NewWriter before Close abandons the write: the object
// does not appear. Writers stream (resumable or multipart upload in chunks
// of about ChunkSize bytes): memory must not grow with the object.
//
// Store.Compose concatenates at most MaxComposeSources existing objects, in
// order, into dst (replacing it), atomically; the jobs package composes
// larger sets in a tree. NewReader and Delete return errors wrapping
// ErrNotFound for a missing object; Delete of a missing object may also
// succeed.
//
// Errors from every method should wrap the backend's error with %w (MarkNotFound
// and MarkExists add the sentinels), and mark failures that are worth retrying
// (throttling, 5xx, timeouts) with failure.Transient(failure.Storage, err), or
// leave them unmarked: the worker treats any error it cannot classify as
// transient and redelivers the job.

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"
)

// MaxComposeSources is the most sources one Store.Compose call takes (GCS's
// limit).
const MaxComposeSources = 32

// Sentinel errors that stores wrap.
var (
	// ErrNotFound: the object or bucket does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: an IfAbsent write found the object already there.
	ErrExists = errors.New("already exists")
)

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

// Lister lists objects page by page, in name order; see the storage
// contract above.
type Lister interface {
	List(ctx context.Context, q ListQuery) iter.Seq2[ObjectInfo, error]
}

// Source is what a job signs objects of.
type Source interface {
	Lister
	// Stat describes one object: the live generation when generation is 0.
	// A missing object is an error wrapping ErrNotFound.
	Stat(ctx context.Context, bucket, name string, generation int64) (ObjectInfo, error)
}

// WriteOptions shape a written or composed object.
type WriteOptions struct {
	// IfAbsent makes Close (or Compose) fail with ErrExists when the object
	// exists.
	IfAbsent bool
	// IfGeneration, when not 0, makes Close (or Compose) fail with
	// ErrExists unless the object's generation is still IfGeneration. Jobs
	// set it only on a Store that is also a Versioned.
	IfGeneration int64
	ContentType  string
	Metadata     map[string]string
	// ChunkSize is the upload chunk, the memory a writer may hold; 0 means
	// the store's default.
	ChunkSize int
}

// Store is where manifests, their parts and a job's markers are written.
type Store interface {
	Lister
	// NewWriter starts writing bucket/name; see the contract above.
	NewWriter(ctx context.Context, bucket, name string, o WriteOptions) io.WriteCloser
	// NewReader reads bucket/name.
	NewReader(ctx context.Context, bucket, name string) (io.ReadCloser, error)
	// Compose concatenates srcs (1 to MaxComposeSources names in bucket)
	// into dst.
	Compose(ctx context.Context, bucket, dst string, srcs []string, o WriteOptions) error
	// Delete removes bucket/name.
	Delete(ctx context.Context, bucket, name string) error
}

// ObjectVersion is one generation of an object and the job that wrote it.
type ObjectVersion struct {
	Generation int64
	// JobID is the object's MetaJobID metadata; "" if it has none.
	JobID string
}

// Versioned is a Store that names object generations and honours
// WriteOptions.IfGeneration (GCS). On such a store the finish lock is a
// lease that another delivery takes over once it expires, and a manifest
// is written only if it is absent or this job's own; on a store without it
// the lock is held for good by its first holder and manifests are written
// without a precondition.
type Versioned interface {
	// Version describes bucket/name; a missing object is an error wrapping
	// ErrNotFound.
	Version(ctx context.Context, bucket, name string) (ObjectVersion, error)
}
