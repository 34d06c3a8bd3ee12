package s3store_test

import (
	"testing"

	"github.com/linkissuer/linkissuer/internal/storetest"
	"github.com/linkissuer/linkissuer/s3store"
)

// TestConformance runs the jobs storage contract against MinIO, one bucket
// per behaviour.
func TestConformance(t *testing.T) {
	t.Parallel()
	const noGenerations = "S3 version IDs are opaque strings, not generations: s3store is not a jobs.Versioned and refuses pinned generations"
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		f := newFixture(t)
		down := f.cfg
		down.Endpoint = storetest.RefusingURL(t)
		unreachable, err := s3store.NewClient(down, nil)
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Backend{
			Store:       f.client,
			Bucket:      f.bucket,
			Unreachable: unreachable,
			Skip: map[string]string{
				"generation conditions":              noGenerations,
				"stat of a generation":               noGenerations,
				"compose over a replaced generation": noGenerations,
			},
		}
	})
}
