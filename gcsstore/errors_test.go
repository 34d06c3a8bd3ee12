package gcsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/linkissuer/linkissuer/blob"
	"github.com/linkissuer/linkissuer/failure"
)

// TestGCSErrorClasses checks how the GCS store's failures reach the worker:
// the sentinels jobs branches on, and outages reported as storage outages
// (storage_unavailable), never as the signer's.
func TestGCSErrorClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantIs     error
		wantReason string
	}{
		{name: "object missing", err: storage.ErrObjectNotExist, wantIs: blob.ErrNotFound, wantReason: "transient"},
		{name: "bucket missing", err: storage.ErrBucketNotExist, wantIs: blob.ErrNotFound, wantReason: "transient"},
		{name: "404", err: &googleapi.Error{Code: http.StatusNotFound}, wantIs: blob.ErrNotFound, wantReason: "transient"},
		{name: "precondition", err: &googleapi.Error{Code: http.StatusPreconditionFailed}, wantIs: blob.ErrExists, wantReason: "transient"},
		{name: "503", err: &googleapi.Error{Code: http.StatusServiceUnavailable}, wantReason: "storage_unavailable"},
		{name: "500 wrapped", err: fmt.Errorf("read: %w", &googleapi.Error{Code: http.StatusInternalServerError}), wantReason: "storage_unavailable"},
		{name: "429", err: &googleapi.Error{Code: http.StatusTooManyRequests}, wantReason: "storage_unavailable"},
		{name: "403 left unmarked", err: &googleapi.Error{Code: http.StatusForbidden}, wantReason: "transient"},
		{name: "connection refused", err: &url.Error{Op: "Get", URL: "http://127.0.0.1:1/storage/v1/b", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, wantReason: "storage_unavailable"},
		{name: "connection reset", err: fmt.Errorf("read: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), wantReason: "storage_unavailable"},
		{name: "truncated answer", err: fmt.Errorf("copy: %w", io.ErrUnexpectedEOF), wantReason: "storage_unavailable"},
		{name: "cancelled by the caller", err: fmt.Errorf("retry: %w", context.Canceled), wantReason: "cancelled"},
		{name: "local error left unmarked", err: errors.New("storage: object name is empty"), wantReason: "transient"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := gcsErr(tc.err)
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("gcsErr(%v) = %v, does not match %v", tc.err, err, tc.wantIs)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("gcsErr(%v) = %v, lost its cause", tc.err, err)
			}
			if got := failure.Classify(err).Reason(); got != tc.wantReason {
				t.Errorf("gcsErr(%v) classified as %s, want %s", tc.err, got, tc.wantReason)
			}
		})
	}
}
