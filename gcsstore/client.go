// Package gcsstore is the Google Cloud Storage driver of the jobs storage
// contract (jobs.Source, jobs.Store and jobs.Versioned; the contract is
// stated in package jobs and checked by internal/storetest).
//
// What it guarantees: listings are read one objects.list page (1000 names)
// at a time; a writer is a resumable upload whose object appears only at a
// successful Close; IfAbsent and IfGeneration are GCS preconditions
// (ifGenerationMatch), and a failed one is reported as blob.ErrExists; a
// missing object or bucket is blob.ErrNotFound; throttling, 5xx answers
// and refused, reset or broken connections are transient failures of
// storage (failure.Storage), so that an outage of GCS is reported as one.
// The endpoint is the client's: storage.NewClient honours
// STORAGE_EMULATOR_HOST, and tests pass fake-gcs-server's URL.
package gcsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"syscall"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/linkissuer/linkissuer/blob"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/sign"
)

// listPageSize is the objects.list page size (the JSON API's maximum).
const listPageSize = 1000

// Client is a jobs Source, Store and Versioned on Google Cloud Storage. It
// is safe for concurrent use.
type Client struct {
	client *storage.Client
}

// New returns a Client over client. It does not take ownership of client:
// the caller closes it.
func New(client *storage.Client) *Client { return &Client{client: client} }

// List implements jobs.Lister with objects.list, one page of listPageSize at a
// time.
func (g *Client) List(ctx context.Context, q blob.ListQuery) iter.Seq2[blob.ObjectInfo, error] {
	return func(yield func(blob.ObjectInfo, error) bool) {
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
			yield(blob.ObjectInfo{}, fmt.Errorf("gcsstore: list gs://%s: %w", q.Bucket, err))
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
				yield(blob.ObjectInfo{}, fmt.Errorf("gcsstore: list gs://%s/%s: %w", q.Bucket, q.Prefix, gcsErr(err)))
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

// Stat implements jobs.Source.
func (g *Client) Stat(ctx context.Context, bucket, name string, generation int64) (blob.ObjectInfo, error) {
	o := g.client.Bucket(bucket).Object(name)
	if generation > 0 {
		o = o.Generation(generation)
	}
	a, err := o.Attrs(ctx)
	if err != nil {
		return blob.ObjectInfo{}, fmt.Errorf("gcsstore: stat gs://%s/%s: %w", bucket, name, gcsErr(err))
	}
	return objectInfo(a, false), nil
}

func objectInfo(a *storage.ObjectAttrs, namesOnly bool) blob.ObjectInfo {
	info := blob.ObjectInfo{Name: a.Name, Generation: a.Generation, Size: -1}
	if !namesOnly {
		info.Size, info.ContentType, info.Updated = a.Size, a.ContentType, a.Updated
	}
	return info
}

// NewWriter implements jobs.Store: a resumable upload in chunks of o.ChunkSize
// (blob.DefaultChunkSize when 0); the object appears at Close.
func (g *Client) NewWriter(ctx context.Context, bucket, name string, o blob.WriteOptions) io.WriteCloser {
	h := withConditions(g.client.Bucket(bucket).Object(name), o)
	w := h.NewWriter(ctx)
	w.ChunkSize = o.ChunkSize
	if w.ChunkSize == 0 {
		w.ChunkSize = blob.DefaultChunkSize
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
		return n, fmt.Errorf("gcsstore: write %s: %w", w.uri, gcsErr(err))
	}
	return n, nil
}

func (w *gcsWriter) Close() error {
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("gcsstore: write %s: %w", w.uri, gcsErr(err))
	}
	return nil
}

// NewReader implements jobs.Store.
func (g *Client) NewReader(ctx context.Context, bucket, name string) (io.ReadCloser, error) {
	r, err := g.client.Bucket(bucket).Object(name).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("gcsstore: read gs://%s/%s: %w", bucket, name, gcsErr(err))
	}
	return r, nil
}

// Compose implements jobs.Store with one objects.compose call. Jobs compose only
// objects they wrote and never changed, so the call is idempotent and is
// retried like any idempotent call.
func (g *Client) Compose(ctx context.Context, bucket, dst string, srcs []string, o blob.WriteOptions) error {
	if len(srcs) == 0 || len(srcs) > blob.MaxComposeSources {
		return &sign.InputError{Field: "compose", Reason: fmt.Sprintf("%d sources; compose takes 1 to %d", len(srcs), blob.MaxComposeSources)}
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
		return fmt.Errorf("gcsstore: compose gs://%s/%s from %d parts: %w", bucket, dst, len(srcs), gcsErr(err))
	}
	return nil
}

// withConditions adds o's preconditions to h.
func withConditions(h *storage.ObjectHandle, o blob.WriteOptions) *storage.ObjectHandle {
	switch {
	case o.IfAbsent:
		return h.If(storage.Conditions{DoesNotExist: true})
	case o.IfGeneration != 0:
		return h.If(storage.Conditions{GenerationMatch: o.IfGeneration})
	}
	return h
}

// Version implements jobs.Versioned.
func (g *Client) Version(ctx context.Context, bucket, name string) (blob.ObjectVersion, error) {
	a, err := g.client.Bucket(bucket).Object(name).Attrs(ctx)
	if err != nil {
		return blob.ObjectVersion{}, fmt.Errorf("gcsstore: stat gs://%s/%s: %w", bucket, name, gcsErr(err))
	}
	return blob.ObjectVersion{Generation: a.Generation, Metadata: a.Metadata}, nil
}

// Delete implements jobs.Store; deleting a missing object succeeds.
func (g *Client) Delete(ctx context.Context, bucket, name string) error {
	err := g.client.Bucket(bucket).Object(name).Retryer(storage.WithPolicy(storage.RetryAlways)).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("gcsstore: delete gs://%s/%s: %w", bucket, name, gcsErr(err))
	}
	return nil
}

// gcsErr adds blob.ErrNotFound or blob.ErrExists to the storage library's
// errors, and marks throttling, server errors and network failures
// (refused, reset or broken connections, DNS, a truncated answer) that
// outlived the library's retries as transient failures of storage. The
// caller's cancellation is left as it is: it is not the store's failure.
func gcsErr(err error) error {
	if errors.Is(err, storage.ErrObjectNotExist) || errors.Is(err, storage.ErrBucketNotExist) {
		return blob.MarkNotFound(err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == http.StatusNotFound:
			return blob.MarkNotFound(err)
		case ge.Code == http.StatusPreconditionFailed:
			return blob.MarkExists(err)
		case ge.Code == http.StatusTooManyRequests || ge.Code >= 500:
			return failure.Transient(failure.Storage, err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return failure.Transient(failure.Storage, err)
	}
	return err
}
