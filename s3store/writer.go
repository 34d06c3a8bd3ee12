package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/linkissuer/linkissuer/blob"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/sign"
)

// S3's multipart limits.
const (
	// MinPartSize is the smallest part but the last (5 MiB).
	MinPartSize = 5 << 20
	// maxParts is the most parts one upload may have.
	maxParts = 10000
	// abortTimeout bounds the clean-up of an abandoned upload.
	abortTimeout = 30 * time.Second
	// maxConditionalPut is the largest IfAbsent write sent as one
	// PutObject. A store may refuse If-None-Match before reading the body
	// and close the connection while a large body is still being sent:
	// the client then sees a reset, not the 412. Larger IfAbsent writes
	// go through a multipart upload, whose small Complete call carries
	// the condition.
	maxConditionalPut = 256 << 10
)

// NewWriter implements jobs.Store. The writer buffers up to o.ChunkSize
// bytes (blob.DefaultChunkSize when 0, at least MinPartSize): an object
// that fits is written with one PutObject at Close; a larger one becomes a
// multipart upload, one part per chunk, completed at Close. Either way the
// object appears whole at Close or not at all: an error, or ctx cancelled
// before Close, aborts the upload. With o.IfAbsent, Close sends
// If-None-Match: * and fails with an error wrapping jobs.ErrExists when the
// object is already there.
//
// ctx is kept for the writer's lifetime, as the contract requires. A writer
// dropped without Close leaves an incomplete multipart upload behind; a
// bucket lifecycle rule (AbortIncompleteMultipartUpload) reclaims those.
func (c *Client) NewWriter(ctx context.Context, bucket, name string, o jobs.WriteOptions) io.WriteCloser {
	return c.newWriter(ctx, bucket, name, o)
}

func (c *Client) newWriter(ctx context.Context, bucket, name string, o jobs.WriteOptions) *writer {
	chunk := o.ChunkSize
	if chunk <= 0 {
		chunk = blob.DefaultChunkSize
	}
	chunk = max(chunk, MinPartSize)
	return &writer{ctx: ctx, c: c, bucket: bucket, name: name, o: o, chunk: chunk}
}

// writer streams one object; see NewWriter. It is not safe for concurrent
// use.
type writer struct {
	ctx          context.Context
	c            *Client
	bucket, name string
	o            jobs.WriteOptions
	chunk        int

	buf      []byte
	uploadID string
	parts    []types.CompletedPart
	err      error // sticky: the first failure
	closed   bool
}

// Write buffers p, uploading a part whenever a chunk is full.
func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, fmt.Errorf("s3store: write s3://%s/%s: %w", w.bucket, w.name, errClosed)
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == w.chunk {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
		k := min(len(p), w.chunk-len(w.buf))
		w.grow(len(w.buf) + k)
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
	}
	return n, nil
}

// grow makes room for need bytes, doubling up to the chunk size and never
// past it: a small object costs little, a large one one chunk.
func (w *writer) grow(need int) {
	if need <= cap(w.buf) {
		return
	}
	nb := make([]byte, len(w.buf), min(w.chunk, max(need, 2*cap(w.buf), 64<<10)))
	copy(nb, w.buf)
	w.buf = nb
}

var errClosed = errors.New("writer already closed")

// flush uploads the buffer as the next part, starting the multipart upload
// on the first one.
func (w *writer) flush() error {
	if err := w.ctx.Err(); err != nil {
		return w.fail(fmt.Errorf("s3store: write s3://%s/%s abandoned: %w", w.bucket, w.name, err))
	}
	if err := w.start(); err != nil {
		return err
	}
	num, err := w.nextPart()
	if err != nil {
		return err
	}
	out, err := w.c.s3.UploadPart(w.ctx, &s3.UploadPartInput{
		Bucket:        aws.String(w.bucket),
		Key:           aws.String(w.name),
		UploadId:      aws.String(w.uploadID),
		PartNumber:    aws.Int32(num),
		Body:          bytes.NewReader(w.buf),
		ContentLength: aws.Int64(int64(len(w.buf))),
	})
	if err != nil {
		return w.fail(wrap(fmt.Sprintf("upload part %d of", num), w.bucket, w.name, err))
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
	w.buf = w.buf[:0]
	return nil
}

// start begins the multipart upload if it has not begun.
func (w *writer) start() error {
	if w.uploadID != "" {
		return nil
	}
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(w.bucket), Key: aws.String(w.name), Metadata: w.o.Metadata}
	if w.o.ContentType != "" {
		in.ContentType = aws.String(w.o.ContentType)
	}
	out, err := w.c.s3.CreateMultipartUpload(w.ctx, in)
	if err != nil {
		return w.fail(wrap("start multipart upload of", w.bucket, w.name, err))
	}
	w.uploadID = aws.ToString(out.UploadId)
	return nil
}

// nextPart is the number of the next part, or an input error (failing the
// write) when the object would need more parts than S3 allows.
func (w *writer) nextPart() (int32, error) {
	if len(w.parts) == maxParts {
		return 0, w.fail(&sign.InputError{Field: "object", Reason: fmt.Sprintf("s3://%s/%s needs more than %d parts (the write chunk is %d bytes)", w.bucket, w.name, maxParts, w.chunk)})
	}
	return int32(len(w.parts) + 1), nil
}

// copyPart adds size bytes of src (in w's bucket) as parts copied by the
// store itself (UploadPartCopy), without passing through this process. The
// buffer must be empty and size at least MinPartSize, so that every part
// but the last is large enough. Parts are at most 1 GiB (S3 allows 5 GiB);
// a tail under MinPartSize joins the part before it.
func (w *writer) copyPart(src string, size int64) error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) != 0 || size < MinPartSize {
		return w.fail(fmt.Errorf("s3store: internal error: copyPart with %d bytes buffered and a %d-byte source", len(w.buf), size))
	}
	if err := w.start(); err != nil {
		return err
	}
	const span = 1 << 30
	for off := int64(0); off < size; {
		end := min(off+span, size)
		if size-end < MinPartSize {
			end = size
		}
		num, err := w.nextPart()
		if err != nil {
			return err
		}
		out, err := w.c.s3.UploadPartCopy(w.ctx, &s3.UploadPartCopyInput{
			Bucket:          aws.String(w.bucket),
			Key:             aws.String(w.name),
			UploadId:        aws.String(w.uploadID),
			PartNumber:      aws.Int32(num),
			CopySource:      aws.String(sign.EscapePath(w.bucket + "/" + src)),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end-1)),
		})
		if err != nil {
			return w.fail(wrap(fmt.Sprintf("copy s3://%s/%s into part %d of", w.bucket, src, num), w.bucket, w.name, err))
		}
		var etag *string
		if out.CopyPartResult != nil {
			etag = out.CopyPartResult.ETag
		}
		w.parts = append(w.parts, types.CompletedPart{ETag: etag, PartNumber: aws.Int32(num)})
		off = end
	}
	return nil
}

// Close makes the object appear: PutObject when it fit in one chunk (and,
// with IfAbsent, in maxConditionalPut), otherwise the last part and
// CompleteMultipartUpload.
func (w *writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if err := w.ctx.Err(); err != nil {
		return w.fail(fmt.Errorf("s3store: write s3://%s/%s abandoned: %w", w.bucket, w.name, err))
	}
	if w.uploadID == "" && (!w.o.IfAbsent || len(w.buf) <= maxConditionalPut) {
		err := w.c.PutObject(w.ctx, w.bucket, w.name, bytes.NewReader(w.buf), int64(len(w.buf)), w.o)
		w.buf = nil
		if err != nil {
			w.err = err
		}
		return err
	}
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(w.bucket),
		Key:             aws.String(w.name),
		UploadId:        aws.String(w.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	}
	if w.o.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := w.c.s3.CompleteMultipartUpload(w.ctx, in); err != nil {
		return w.fail(wrap("complete multipart upload of", w.bucket, w.name, err))
	}
	w.buf = nil
	return nil
}

// fail records err, aborts the multipart upload if there is one, and
// returns err.
func (w *writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	if w.uploadID != "" {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortTimeout)
		defer cancel()
		// A failed abort leaves parts for the lifecycle rule; the write has
		// failed either way, and w.err says why.
		_, _ = w.c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(w.bucket), Key: aws.String(w.name), UploadId: aws.String(w.uploadID),
		})
		w.uploadID = ""
	}
	w.buf = nil
	return w.err
}
