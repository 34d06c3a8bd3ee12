package minio

import (
	"errors"
	"os"
	"testing"
)

// Need is what a test does with Start's error: nothing when it is nil; a
// skip when no minio binary is installed, unless $LINKISSUER_REQUIRE_MINIO
// is set (.ci/run sets it); otherwise a failure.
func Need(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) == "" {
		t.Skipf("MinIO integration test skipped: %v", err)
	}
	t.Fatalf("MinIO did not start: %v", err)
}
