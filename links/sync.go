package links

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// ObjectStater looks up what a link is for: an object's generation (the
// live one when generation is 0), size and content type. Errors for a
// missing object or generation must match ErrObjectNotFound.
type ObjectStater interface {
	StatObject(ctx context.Context, bucket, object string, generation int64) (schema.LinkObject, error)
}

// ErrObjectNotFound is what ObjectStater errors match when the object (or
// the requested generation) does not exist. Sync makes such an error
// permanent with failure.CodeObjectNotFound (POST /v1/links answers 404).
var ErrObjectNotFound = errors.New("object not found")

// Sync issues POST /v1/links requests through the same policy and
// signer as events. With Objects set, it looks each object up first, so
// that the content-type policy applies and the link carries the object's
// size, content type and generation; a requested generation is also signed
// into the URL (generation=N), so the link serves that generation only.
type Sync struct {
	Links *Issuer
	// Objects looks objects up; nil issues without a lookup (size -1, no
	// content type, which a content-type policy refuses).
	Objects ObjectStater
}

// IssueLink implements worker.LinkIssuer.
func (s *Sync) IssueLink(ctx context.Context, r worker.LinkRequest) (*schema.Link, error) {
	var expires time.Duration
	if r.ExpiresIn != "" {
		var err error
		if expires, err = schema.ParseExpiresIn(r.ExpiresIn); err != nil {
			return nil, err
		}
	}
	if err := schema.ValidateObjectName("object", r.Object); err != nil {
		return nil, err
	}
	if r.Generation < 0 {
		return nil, &schema.FieldError{Field: "generation", Reason: "negative", Code: schema.CodeInvalidField}
	}
	preq := policy.Request{Bucket: r.Bucket, Object: r.Object, Method: r.Method, Expires: expires}
	obj := schema.LinkObject{Generation: r.Generation, Size: -1, Pin: r.Generation > 0, Query: r.ResponseParams}
	if s.Objects != nil {
		// Policy first, all but the content type, which the lookup gives:
		// an object the caller may not have is never looked up.
		if _, err := s.Links.Policy.Check(preq); err != nil && !isContentTypeRefusal(err) {
			return nil, err
		}
		found, err := s.Objects.StatObject(ctx, r.Bucket, r.Object, r.Generation)
		if errors.Is(err, ErrObjectNotFound) {
			return nil, failure.Permanent(failure.CodeObjectNotFound, err)
		}
		if err != nil {
			return nil, err
		}
		obj.Generation, obj.Size, obj.ContentType = found.Generation, found.Size, found.ContentType
		preq.ContentType = found.ContentType
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	src := schema.LinkSource{MessageID: "sync-" + hex.EncodeToString(id)}
	if _, ok := audit.RequesterFrom(ctx); !ok {
		// A caller that says who asked (a durable-link click) keeps its
		// own requester.
		ctx = audit.WithRequester(ctx, audit.Requester{Path: audit.PathSync, Caller: r.Caller, MessageID: src.MessageID})
	}
	return s.Links.Issue(ctx, preq, obj, src)
}

func isContentTypeRefusal(err error) bool {
	var ref *policy.Refusal
	return errors.As(err, &ref) && ref.Code == policy.CodeContentType
}

// GCSObjects is an ObjectStater over Cloud Storage.
type GCSObjects struct{ Client *storage.Client }

// StatObject implements ObjectStater.
func (g GCSObjects) StatObject(ctx context.Context, bucket, object string, generation int64) (schema.LinkObject, error) {
	o := g.Client.Bucket(bucket).Object(object)
	if generation > 0 {
		o = o.Generation(generation)
	}
	a, err := o.Attrs(ctx)
	switch {
	case errors.Is(err, storage.ErrObjectNotExist), errors.Is(err, storage.ErrBucketNotExist):
		return schema.LinkObject{}, fmt.Errorf("gs://%s/%s (generation %d): %w", bucket, object, generation, ErrObjectNotFound)
	case err != nil:
		var ge *googleapi.Error
		if errors.As(err, &ge) && (ge.Code == http.StatusTooManyRequests || ge.Code >= 500) {
			return schema.LinkObject{}, &sign.RetryableError{Err: err}
		}
		return schema.LinkObject{}, fmt.Errorf("look up gs://%s/%s: %w", bucket, object, err)
	}
	return schema.LinkObject{Generation: a.Generation, Size: a.Size, ContentType: a.ContentType}, nil
}
