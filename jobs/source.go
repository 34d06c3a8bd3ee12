package jobs

// Storage contract (read this if you implement a store for another
// backend, e.g. S3).
//
// The jobs package talks to object storage only through the small
// interfaces below; it owns them, the stores implement them (gcsstore for
// GCS, s3store for S3-compatible stores), and package blob holds the values
// they exchange. internal/storetest checks a store against this contract.
// A job needs:
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
// Errors from every method should wrap the backend's error with %w
// (blob.MarkNotFound and blob.MarkExists add the sentinels), and mark
// failures that are worth retrying (throttling, 5xx, refused or broken
// connections, timeouts) with failure.Transient(failure.Storage, err), so
// that an outage of the store is reported as one; an unmarked error is
// still redelivered, but counted as of unknown cause.

import (
	"context"
	"io"
	"iter"

	"github.com/linkissuer/linkissuer/blob"
)

// The store vocabulary is package blob's; these names keep it readable
// here and in the stores' signatures.
type (
	ObjectInfo    = blob.ObjectInfo
	ListQuery     = blob.ListQuery
	WriteOptions  = blob.WriteOptions
	ObjectVersion = blob.ObjectVersion
)

// MaxComposeSources is the most sources one Store.Compose call takes.
const MaxComposeSources = blob.MaxComposeSources

// Error kinds that stores wrap (see package blob).
var (
	ErrNotFound = blob.ErrNotFound
	ErrExists   = blob.ErrExists
)

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
