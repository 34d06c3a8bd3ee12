package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/sign"
)

// DefaultChunkSize is the upload chunk of GCS writers: the memory one
// manifest writer holds.
const DefaultChunkSize = 8 << 20

// listPageSize is the objects.list page size (the JSON API's maximum).
const listPageSize = 1000

// GCS is a Source and a Store on Google Cloud Storage. The client decides
// the endpoint: storage.NewClient honours STORAGE_EMULATOR_HOST.
type GCS struct {
	client *storage.Client
}

// NewGCS returns a GCS over client. It does not take ownership of client.
func NewGCS(client *storage.Client) *GCS { return &GCS{client: client} }

// List implements Lister with objects.list, one page of listPageSize at a
// time.
func (g *GCS) List(ctx context.Context, q ListQuery) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		sq := &storage.Query{
			Prefix:      q.Prefix,
			StartOffset: q.StartOffset,
			EndOffset:   q.EndOffset,
			Versions:    q.Versions,
			MatchGlob:   q.MatchGlob,
			Projection:  storage.ProjectionNoACL,
		}
		attrs := []string{"Name", "Generation", "Size", "ContentType", "Updated"}
		if q.NamesOnly {
			attrs = []string{"Name", "Generation"}
		}
		if err := sq.SetAttrSelection(attrs); err != nil {
			yield(ObjectInfo{}, fmt.Errorf("jobs: list gs://%s: %w", q.Bucket, err))
			return
		}
		it := g.client.Bucket(q.Bucket).Objects(ctx, sq)
		it.PageInfo().MaxSize = listPageSize
		for {
			a, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return
			}
			if err != nil {
				yield(ObjectInfo{}, fmt.Errorf("jobs: list gs://%s/%s: %w", q.Bucket, q.Prefix, gcsErr(err)))
				return
			}
			if a.Name == "" {
				continue // a prefix entry; none without a delimiter
			}
			if !yield(objectInfo(a, q.NamesOnly), nil) {
				return
			}
		}
	}
}

// Stat implements Source.
func (g *GCS) Stat(ctx context.Context, bucket, name string, generation int64) (ObjectInfo, error) {
	o := g.client.Bucket(bucket).Object(name)
	if generation > 0 {
		o = o.Generation(generation)
	}
	a, err := o.Attrs(ctx)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("jobs: stat gs://%s/%s: %w", bucket, name, gcsErr(err))
	}
	return objectInfo(a, false), nil
}

func objectInfo(a *storage.ObjectAttrs, namesOnly bool) ObjectInfo {
	info := ObjectInfo{Name: a.Name, Generation: a.Generation, Size: -1}
	if !namesOnly {
		info.Size, info.ContentType, info.Updated = a.Size, a.ContentType, a.Updated
	}
	return info
}

// NewWriter implements Store: a resumable upload in chunks of o.ChunkSize
// (DefaultChunkSize when 0); the object appears at Close.
func (g *GCS) NewWriter(ctx context.Context, bucket, name string, o WriteOptions) io.WriteCloser {
	h := withConditions(g.client.Bucket(bucket).Object(name), o)
	w := h.NewWriter(ctx)
	w.ChunkSize = o.ChunkSize
	if w.ChunkSize == 0 {
		w.ChunkSize = DefaultChunkSize
	}
	w.ContentType = o.ContentType
	w.Metadata = o.Metadata
	return &gcsWriter{w: w, uri: "gs://" + bucket + "/" + name}
}

// gcsWriter maps a failed precondition at Close to ErrExists.
type gcsWriter struct {
	w   *storage.Writer
	uri string
}

func (w *gcsWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("jobs: write %s: %w", w.uri, gcsErr(err))
	}
	return n, nil
}

func (w *gcsWriter) Close() error {
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("jobs: write %s: %w", w.uri, gcsErr(err))
	}
	return nil
}

// NewReader implements Store.
func (g *GCS) NewReader(ctx context.Context, bucket, name string) (io.ReadCloser, error) {
	r, err := g.client.Bucket(bucket).Object(name).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("jobs: read gs://%s/%s: %w", bucket, name, gcsErr(err))
	}
	return r, nil
}

// Compose implements Store with one objects.compose call. Jobs compose only
// objects they wrote and never changed, so the call is idempotent and is
// retried like any idempotent call.
func (g *GCS) Compose(ctx context.Context, bucket, dst string, srcs []string, o WriteOptions) error {
	if len(srcs) == 0 || len(srcs) > MaxComposeSources {
		return &sign.InputError{Field: "compose", Reason: fmt.Sprintf("%d sources; compose takes 1 to %d", len(srcs), MaxComposeSources)}
	}
	b := g.client.Bucket(bucket)
	handles := make([]*storage.ObjectHandle, len(srcs))
	for i, s := range srcs {
		handles[i] = b.Object(s)
	}
	h := withConditions(b.Object(dst).Retryer(storage.WithPolicy(storage.RetryAlways)), o)
	c := h.ComposerFrom(handles...)
	c.ContentType = o.ContentType
	c.Metadata = o.Metadata
	if _, err := c.Run(ctx); err != nil {
		return fmt.Errorf("jobs: compose gs://%s/%s from %d parts: %w", bucket, dst, len(srcs), gcsErr(err))
	}
	return nil
}

// withConditions adds o's preconditions to h.
func withConditions(h *storage.ObjectHandle, o WriteOptions) *storage.ObjectHandle {
	switch {
	case o.IfAbsent:
		return h.If(storage.Conditions{DoesNotExist: true})
	case o.IfGeneration != 0:
		return h.If(storage.Conditions{GenerationMatch: o.IfGeneration})
	}
	return h
}

// Version implements Versioned.
func (g *GCS) Version(ctx context.Context, bucket, name string) (ObjectVersion, error) {
	a, err := g.client.Bucket(bucket).Object(name).Attrs(ctx)
	if err != nil {
		return ObjectVersion{}, fmt.Errorf("jobs: stat gs://%s/%s: %w", bucket, name, gcsErr(err))
	}
	return ObjectVersion{Generation: a.Generation, JobID: a.Metadata[MetaJobID]}, nil
}

// Delete implements Store; deleting a missing object succeeds.
func (g *GCS) Delete(ctx context.Context, bucket, name string) error {
	err := g.client.Bucket(bucket).Object(name).Retryer(storage.WithPolicy(storage.RetryAlways)).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("jobs: delete gs://%s/%s: %w", bucket, name, gcsErr(err))
	}
	return nil
}

// gcsErr adds ErrNotFound or ErrExists to the storage library's errors, and
// marks throttling and server errors as transient failures of storage.
func gcsErr(err error) error {
	if errors.Is(err, storage.ErrObjectNotExist) || errors.Is(err, storage.ErrBucketNotExist) {
		return MarkNotFound(err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == http.StatusNotFound:
			return MarkNotFound(err)
		case ge.Code == http.StatusPreconditionFailed:
			return MarkExists(err)
		case ge.Code == http.StatusTooManyRequests || ge.Code >= 500:
			return failure.Transient(failure.Storage, err)
		}
	}
	return err
}
