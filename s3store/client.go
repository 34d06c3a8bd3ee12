package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/linkissuer/linkissuer/blob"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/sign"
)

// Client is a jobs.Source and a jobs.Store on an S3-compatible store,
// through aws-sdk-go-v2. It is safe for concurrent use.
type Client struct {
	s3       *s3.Client
	cfg      Config
	pageSize int32
}

// The contracts Client implements.
var (
	_ jobs.Source = (*Client)(nil)
	_ jobs.Store  = (*Client)(nil)
)

// ClientOptions tune a Client. A nil *ClientOptions means defaults.
type ClientOptions struct {
	// HTTPClient replaces the SDK's default transport (tests, proxies).
	HTTPClient *http.Client
	// MaxAttempts bounds each call's attempts, retries included; 3 by
	// default (the SDK's standard retryer: 5xx, 429, throttling, timeouts,
	// with jittered backoff).
	MaxAttempts int
	// ListPageSize is the keys asked for per ListObjectsV2 page, 1 to
	// 1,000 (the default and S3's maximum).
	ListPageSize int
}

// NewClient returns a Client for the store c describes. It makes no
// network call.
//
// Checksums are only sent and checked where S3 requires them: the SDK's
// default (CRC32 trailers on every upload, in aws-chunked encoding) is
// refused by several S3-compatible stores, the GCS XML API among them.
func NewClient(c Config, opts *ClientOptions) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.ListPageSize <= 0 || o.ListPageSize > maxPageSize {
		o.ListPageSize = maxPageSize
	}
	base, _ := c.baseURL()
	so := s3.Options{
		Region:                     c.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(c.Key.AccessID, c.Key.Secret, ""),
		UsePathStyle:               c.style() == sign.PathStyle,
		RetryMaxAttempts:           o.MaxAttempts,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if base != nil {
		so.BaseEndpoint = aws.String(base.String())
	}
	if o.HTTPClient != nil {
		so.HTTPClient = o.HTTPClient
	}
	return &Client{s3: s3.New(so), cfg: c, pageSize: int32(o.ListPageSize)}, nil
}

// maxPageSize is S3's largest ListObjectsV2 page.
const maxPageSize = 1000

// Config is the configuration c was built from.
func (c *Client) Config() Config { return c.cfg }

// SDK exposes the underlying aws-sdk-go-v2 client, for operations this
// package does not wrap.
func (c *Client) SDK() *s3.Client { return c.s3 }

// Stat implements jobs.Source with HeadObject. S3 version IDs are opaque
// strings, not generations: a non-zero generation is refused.
func (c *Client) Stat(ctx context.Context, bucket, name string, generation int64) (jobs.ObjectInfo, error) {
	if generation != 0 {
		return jobs.ObjectInfo{}, errNoGenerations
	}
	out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
	if err != nil {
		return jobs.ObjectInfo{}, wrap("stat", bucket, name, err)
	}
	info := jobs.ObjectInfo{Name: name, Size: -1, ContentType: aws.ToString(out.ContentType)}
	if out.ContentLength != nil {
		info.Size = *out.ContentLength
	}
	if out.LastModified != nil {
		info.Updated = *out.LastModified
	}
	return info, nil
}

// errNoGenerations refuses generation-pinned requests: permanent.
var errNoGenerations = &sign.InputError{Field: "generation", Reason: "S3-compatible stores have version IDs, not generations; include_generations and pinned generations are for GCS only"}

// NewReader implements jobs.Store with GetObject.
func (c *Client) NewReader(ctx context.Context, bucket, name string) (io.ReadCloser, error) {
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
	if err != nil {
		return nil, wrap("get", bucket, name, err)
	}
	return out.Body, nil
}

// Delete implements jobs.Store; S3 reports success for a missing object.
func (c *Client) Delete(ctx context.Context, bucket, name string) error {
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
	var missing *types.NoSuchKey
	if errors.As(err, &missing) {
		return nil
	}
	return wrap("delete", bucket, name, err)
}

// PutObject writes size bytes of body to bucket/name in one request. With
// o.IfAbsent it sends If-None-Match: * and fails with jobs.ErrExists when
// the object is already there.
func (c *Client) PutObject(ctx context.Context, bucket, name string, body io.Reader, size int64, o jobs.WriteOptions) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(name),
		Body:          body,
		ContentLength: aws.Int64(size),
		Metadata:      o.Metadata,
	}
	if o.ContentType != "" {
		in.ContentType = aws.String(o.ContentType)
	}
	if o.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := c.s3.PutObject(ctx, in)
	return wrap("put", bucket, name, err)
}

// CreateBucket creates bucket in the client's region; a bucket that
// already exists and is ours is success.
func (c *Client) CreateBucket(ctx context.Context, bucket string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if c.cfg.Region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(c.cfg.Region)}
	}
	_, err := c.s3.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if errors.As(err, &owned) {
		return nil
	}
	return wrap("create bucket", bucket, "", err)
}

// wrap classifies an SDK error for the jobs package: jobs.ErrNotFound and
// jobs.ErrExists by error code; throttling, 5xx and network failures that
// outlived the SDK's retries as transient failures of storage; everything
// else (access denied, bad requests) as it is.
func wrap(op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("s3store: %s s3://%s/%s", op, bucket, key)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", where, err)
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		// Connection refused or reset, DNS: the store may come back.
		return failure.Transient(failure.Storage, fmt.Errorf("%s: %w", where, err))
	}
	switch code := api.ErrorCode(); {
	case code == "PreconditionFailed" || code == "ConditionalRequestConflict":
		return fmt.Errorf("%s: %w", where, blob.MarkExists(err))
	case code == "NoSuchKey" || code == "NoSuchBucket" || code == "NotFound" || code == "NoSuchUpload":
		return fmt.Errorf("%s: %w", where, blob.MarkNotFound(err))
	case code == "SlowDown" || code == "InternalError" || code == "ServiceUnavailable" ||
		code == "RequestTimeout" || strings.HasPrefix(code, "Throttl"):
		return failure.Transient(failure.Storage, fmt.Errorf("%s: %w", where, err))
	}
	switch status := httpStatus(err); {
	case status == http.StatusNotFound:
		return fmt.Errorf("%s: %w", where, blob.MarkNotFound(err))
	case status == http.StatusTooManyRequests || status >= 500:
		return failure.Transient(failure.Storage, fmt.Errorf("%s: %w", where, err))
	}
	return fmt.Errorf("%s: %w", where, err)
}

// httpStatus digs the HTTP status out of an SDK error, 0 if there is none.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
