package s3store

import (
	"context"
	"fmt"
	"strings"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/schema"
)

// Backends serves the jobs whose source is an S3-compatible store, for the
// stores this worker was configured with. A job naming any other endpoint
// or region is refused (permanently): a job message must not point the
// worker's credentials, or its requests, at a host of its choosing.
//
// Each store gets one Client (listing, and writing s3:// manifests) and one
// URLSigner (links), built once and shared by every job; both are safe for
// concurrent use.
type Backends struct {
	stores map[storeID]jobs.Backend
}

// storeID identifies a configured store the way a job names it.
type storeID struct {
	endpoint string // scheme://host[:port], lower case; "" for AWS
	region   string
}

// NewBackends builds a backend for each store. It makes no network call.
func NewBackends(stores []Config, opts *ClientOptions) (*Backends, error) {
	b := &Backends{stores: make(map[storeID]jobs.Backend, len(stores))}
	for i, c := range stores {
		id, err := c.id()
		if err != nil {
			return nil, fmt.Errorf("s3store: store %d: %w", i, err)
		}
		if _, dup := b.stores[id]; dup {
			return nil, fmt.Errorf("s3store: store %d: endpoint %q, region %s given twice", i, c.Endpoint, c.Region)
		}
		client, err := NewClient(c, opts)
		if err != nil {
			return nil, fmt.Errorf("s3store: store %d: %w", i, err)
		}
		signer, err := c.URLSigner()
		if err != nil {
			return nil, fmt.Errorf("s3store: store %d: %w", i, err)
		}
		b.stores[id] = jobs.Backend{Source: client, Signer: signer, Store: client}
	}
	return b, nil
}

// Backend returns the backend for an s3 job source. It is a
// jobs.BackendFunc.
func (b *Backends) Backend(_ context.Context, src *schema.JobSource) (jobs.Backend, error) {
	if src.Store != schema.StoreS3 {
		return jobs.Backend{}, failure.Permanent(failure.CodeInvalidField, fmt.Errorf("s3store: source store %q is not s3", src.Store))
	}
	id, err := (&Config{Endpoint: src.Endpoint, Region: src.Region}).id()
	if err == nil {
		if be, ok := b.stores[id]; ok {
			return be, nil
		}
		err = fmt.Errorf("this worker has no key for endpoint %q in region %s", src.Endpoint, src.Region)
		if src.Endpoint == "" {
			err = fmt.Errorf("this worker has no key for AWS S3 in region %s", src.Region)
		}
	}
	return jobs.Backend{}, failure.Permanent(failure.CodeInvalidField, fmt.Errorf("s3store: source s3://%s: %w", src.Bucket, err))
}

// Func returns a jobs.BackendFunc that serves s3 sources from b and every
// other source (gcs) with gcs.
func (b *Backends) Func(gcs jobs.Backend) jobs.BackendFunc {
	return func(ctx context.Context, src *schema.JobSource) (jobs.Backend, error) {
		if src.Store == schema.StoreS3 {
			return b.Backend(ctx, src)
		}
		return gcs, nil
	}
}

// id normalizes the endpoint (scheme added, host lower-cased, no trailing
// slash) so that a job's "http://MinIO:9000/" matches a configured
// "http://minio:9000".
func (c *Config) id() (storeID, error) {
	u, err := c.baseURL()
	if err != nil {
		return storeID{}, err
	}
	id := storeID{region: c.Region}
	if u != nil {
		id.endpoint = u.Scheme + "://" + strings.ToLower(u.Host)
	}
	return id, nil
}
