package s3store_test

import (
	"net"
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
		down.Endpoint = refusingURL(t)
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

// refusingURL is the URL of a loopback port that was free a moment ago:
// connections to it are refused.
func refusingURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
