package preflight

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/linkissuer/linkissuer/fleet/gcsfleet"
)

// BucketLookup is what the bucket check needs: nil when the bucket exists
// and the caller may list it.
type BucketLookup interface {
	LookupBucket(ctx context.Context, bucket string) error
}

// Bucket checks that bucket exists and its objects can be listed (what a
// job does, and what roles/storage.objectViewer grants).
func Bucket(l BucketLookup, bucket, account string) Check {
	if account == "" {
		account = "the runtime service account"
	}
	return Check{
		Name: "bucket gs://" + bucket,
		Run: func(ctx context.Context) error {
			err := l.LookupBucket(ctx, bucket)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, storage.ErrBucketNotExist):
				return Fixf(fmt.Errorf("bucket %s does not exist", bucket), "create it, or correct the --allow rule that names it")
			case storageStatus(err) == http.StatusForbidden:
				return Fixf(fmt.Errorf("bucket %s: permission denied", bucket), "grant roles/storage.objectViewer on gs://%s to %s", bucket, account)
			}
			return err
		},
	}
}

// FleetProbe writes a member object under the quota fleet's prefix, lists
// it and deletes it (app.ProbeFleet).
type FleetProbe func(ctx context.Context) error

// QuotaFleet checks that the --quota-fleet prefix at url can be written,
// listed and deleted, as every replica of the fleet does each second.
func QuotaFleet(probe FleetProbe, url, account string) Check {
	if account == "" {
		account = "the runtime service account"
	}
	return Check{
		Name: "quota fleet " + url + " (--quota-fleet)",
		Run: func(ctx context.Context) error {
			err := probe(ctx)
			if err == nil {
				return nil
			}
			bucket, _, perr := gcsfleet.ParseURL(url)
			switch {
			case perr != nil:
				return Fixf(err, "give --quota-fleet as gs://BUCKET/PREFIX")
			case storageStatus(err) == http.StatusNotFound:
				return Fixf(err, "create the bucket %s, or correct --quota-fleet", bucket)
			case storageStatus(err) == http.StatusForbidden:
				return Fixf(err, "grant roles/storage.objectUser on gs://%s to %s (storage.objects.create, list and delete on the prefix)", bucket, account)
			}
			return Fixf(err, "the bucket %s must exist and %s needs storage.objects.create, list and delete on the prefix (roles/storage.objectUser)", bucket, account)
		},
	}
}

// storageStatus is the HTTP status a Cloud Storage error stands for:
// 404 for a bucket that does not exist, the API's code for a
// googleapi.Error, 0 for anything else.
func storageStatus(err error) int {
	var gerr *googleapi.Error
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		return http.StatusNotFound
	case errors.As(err, &gerr):
		return gerr.Code
	}
	return 0
}

// StorageClient is the check that a Cloud Storage client could be built
// when job messages can arrive (err is what building it returned).
func StorageClient(err error) Check {
	if err != nil {
		err = Fixf(fmt.Errorf("no Cloud Storage client: %w", err),
			"give the process credentials (a service account on Cloud Run/GKE, gcloud auth application-default login, or $STORAGE_EMULATOR_HOST), or run with --jobs=false if this worker never receives job messages")
	}
	return Static("Cloud Storage client (job messages)", err)
}

// GCS looks buckets up with a Cloud Storage client.
type GCS struct{ Client *storage.Client }

// LookupBucket implements BucketLookup: one page of one object.
func (g GCS) LookupBucket(ctx context.Context, bucket string) error {
	it := g.Client.Bucket(bucket).Objects(ctx, &storage.Query{})
	it.PageInfo().MaxSize = 1
	_, err := it.Next()
	if errors.Is(err, iterator.Done) {
		return nil
	}
	return err
}
