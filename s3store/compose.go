package s3store

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/sign"
)

// Compose implements jobs.Store. S3 has no compose call, so dst is built as
// one upload (see NewWriter), atomically at the end: a source of at least
// MinPartSize that starts on a part boundary is copied by the store itself
// (UploadPartCopy); smaller sources, which S3 refuses as parts unless last,
// are streamed through this process, holding at most one chunk. Manifest
// parts are usually small, so most of a manifest is re-streamed once.
//
// Like GCS compose it is idempotent for sources that do not change; unlike
// GCS compose it costs one HeadObject per source, and a GET per small one.
func (c *Client) Compose(ctx context.Context, bucket, dst string, srcs []string, o jobs.WriteOptions) error {
	if len(srcs) == 0 || len(srcs) > jobs.MaxComposeSources {
		return &sign.InputError{Field: "compose", Reason: fmt.Sprintf("%d sources; compose takes 1 to %d", len(srcs), jobs.MaxComposeSources)}
	}
	w := c.newWriter(ctx, bucket, dst, o) // every early return below aborts it (w.fail)
	for _, src := range srcs {
		head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(src)})
		if err != nil {
			return w.fail(wrap("compose: stat source", bucket, src, err))
		}
		size := aws.ToInt64(head.ContentLength)
		if len(w.buf) == 0 && size >= MinPartSize {
			if err := w.copyPart(src, size); err != nil {
				return err
			}
			continue
		}
		if err := c.stream(ctx, w, bucket, src, size); err != nil {
			return err
		}
	}
	return w.Close()
}

// stream copies src into w through this process.
func (c *Client) stream(ctx context.Context, w *writer, bucket, src string, size int64) error {
	r, err := c.NewReader(ctx, bucket, src)
	if err != nil {
		return w.fail(fmt.Errorf("compose s3://%s/%s: %w", bucket, w.name, err))
	}
	defer r.Close()
	n, err := io.Copy(w, r)
	if err != nil {
		if w.err != nil {
			return w.err
		}
		return w.fail(failure.Transient(failure.Storage, fmt.Errorf("s3store: compose s3://%s/%s: reading s3://%s/%s: %w", bucket, w.name, bucket, src, err)))
	}
	if n != size {
		// The source changed between HeadObject and GetObject.
		return w.fail(failure.Transient(failure.Storage, fmt.Errorf("s3store: compose s3://%s/%s: s3://%s/%s was %d bytes, read %d", bucket, w.name, bucket, src, size, n)))
	}
	return nil
}
