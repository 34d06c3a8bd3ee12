package gcsstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/internal/storetest"
)

var bucketSeq atomic.Int64

// TestConformance runs the jobs storage contract against fake-gcs-server,
// in process, one server per behaviour.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		bucket := fmt.Sprintf("conformance-%d", bucketSeq.Add(1))
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket, VersioningEnabled: true})
		return storetest.Backend{
			Store:       gcsstore.New(newClient(t, srv.URL(), nil)),
			Bucket:      bucket,
			Unreachable: gcsstore.New(newClient(t, storetest.RefusingURL(t), []storage.RetryOption{storage.WithMaxAttempts(2)})),
			Skip: map[string]string{
				// GCS honours ifGenerationMatch on objects.compose (the
				// jobs tests' lease and manifest guards rely on it there);
				// the emulator ignores every precondition of compose.
				"compose refuses an existing dst with IfAbsent": "fake-gcs-server v1.56.1 ignores compose preconditions",
				"compose over a replaced generation":            "fake-gcs-server v1.56.1 ignores compose preconditions",
				// GCS answers 404; the emulator's 500 is, rightly, an
				// outage, which Compose retries until its context ends.
				"compose with a missing source": "fake-gcs-server v1.56.1 answers a missing compose source with 500, not 404",
			},
		}
	})
}

// newClient is the JSON API at url, as STORAGE_EMULATOR_HOST would give.
func newClient(t *testing.T, url string, retry []storage.RetryOption) *storage.Client {
	t.Helper()
	client, err := storage.NewClient(context.Background(), option.WithEndpoint(url+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	if retry != nil {
		client.SetRetry(retry...)
	}
	t.Cleanup(func() { client.Close() })
	return client
}
