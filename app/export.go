package app

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// Export is one local export's clients and runner (`linkissuer export`).
type Export struct {
	GCS     *gcsstore.Client
	Runner  *jobs.Runner
	closers []func()
}

// ExpiryError is a job lifetime the signer cannot grant.
type ExpiryError struct {
	// Limit is the signer's longest lifetime.
	Limit time.Duration
	Err   error
}

func (e *ExpiryError) Error() string { return fmt.Sprintf("%v (the signer allows %s)", e.Err, e.Limit) }
func (e *ExpiryError) Unwrap() error { return e.Err }

// ExportOptions are what an export takes besides its configuration and
// job; a nil *ExportOptions means none of them.
type ExportOptions struct {
	// OnObject, if set, is called once per accounted object
	// (jobs.Options.OnObject).
	OnObject func(ok bool)
	// Audit, if set, builds the recorder of the export's links from its
	// signer: every row and the manifest's own URL are recorded as a job's
	// are (path job, the job's id and submitter), and with a fail-closed
	// recorder a row whose record is not written is not released. A nil
	// recorder records none.
	Audit func(signer sign.Signer) (*audit.Recorder, error)
	// Log receives a quota fleet's state changes (nil: none).
	Log *zap.Logger
}

// NewExport builds the runner of job, which must be valid and write a gs://
// manifest, from c, which should have passed Validate. The user asked for
// these links: the policy only bounds them to the job's own buckets,
// method and lifetime. On error nothing is left open.
func NewExport(ctx context.Context, c *config.Export, job *schema.Job, o *ExportOptions) (_ *Export, err error) {
	if o == nil {
		o = &ExportOptions{}
	}
	e := &Export{}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	opts, err := SignOptions(&c.URL)
	if err != nil {
		return nil, err
	}
	signer, err := NewSigner(ctx, &c.Cred, o.Log)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, signer.Close)
	urls, err := sign.New(signer, opts)
	if err != nil {
		return nil, err
	}
	expiry, err := job.Expiry()
	if err != nil {
		return nil, err
	}
	if err := sign.CheckExpiry(expiry, urls.MaxExpiry()); err != nil {
		return nil, &ExpiryError{Limit: urls.MaxExpiry(), Err: err}
	}
	client, err := StorageClient(ctx, c.URL.EmulatorHost)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { client.Close() })
	e.GCS = gcsstore.New(client)
	manifestBucket, _, err := schema.ParseGCSURI("--manifest", job.Output.Manifest.URI)
	if err != nil {
		return nil, err
	}
	pol, err := policy.New(policy.Config{
		Allow:             []string{job.Source.Bucket, manifestBucket},
		Methods:           []string{job.Method, "GET"},
		DefaultExpiry:     expiry,
		MaxExpiry:         expiry,
		AllowControlChars: true,
	})
	if err != nil {
		return nil, err
	}
	concurrency := c.Concurrency
	if concurrency <= 0 {
		concurrency = 4 * runtime.NumCPU()
		if signer.Engine != nil {
			concurrency = 2 * signer.Engine.Options().MaxInFlight
		}
	}
	jo := jobs.Options{
		Backends: jobs.GCSOnly(jobs.Backend{Source: e.GCS, Signer: urls, Store: e.GCS}), Policy: pol, Concurrency: concurrency,
		OnObject: o.OnObject,
	}
	if o.Audit != nil {
		rec, err := o.Audit(signer)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			jo.Audit = rec
		}
	}
	e.Runner, err = jobs.New(jo)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Close releases what NewExport built, last first.
func (e *Export) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}
