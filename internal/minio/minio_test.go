package minio

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

func TestStartAndStop(t *testing.T) {
	s, err := Start(context.Background(), nil)
	if errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.Endpoint + "/minio/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health/live: %s", resp.Status)
	}
	if s.PID() <= 0 {
		t.Errorf("PID() = %d", s.PID())
	}
	if s.Region != "us-east-1" || len(s.SecretKey) < 8 || len(s.AccessKey) < 3 {
		t.Errorf("credentials or region not set: region %q, access key %q", s.Region, s.AccessKey)
	}
	s.Stop()
	s.Stop() // idempotent
	if conn, err := net.DialTimeout("tcp", s.Host, time.Second); err == nil {
		conn.Close()
		t.Errorf("minio still listening on %s after Stop", s.Host)
	}
	if _, err := os.Stat(s.dataDir); !os.IsNotExist(err) {
		t.Errorf("data directory %s not removed: %v", s.dataDir, err)
	}
}

func TestStopOnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, nil)
	if errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) == "" {
		cancel()
		t.Skip(err)
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cancel()
	select {
	case <-s.proc.Done():
	case <-time.After(30 * time.Second):
		s.Stop()
		t.Fatal("minio still running 30s after its context was cancelled")
	}
}

func TestFindBinaryFromEnv(t *testing.T) {
	t.Setenv(BinEnv, "/nonexistent/minio")
	if _, err := FindBinary(); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("FindBinary with a missing $%s: got %v, want ErrNotInstalled", BinEnv, err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinEnv, self)
	if got, err := FindBinary(); err != nil || got != self {
		t.Errorf("FindBinary = %q, %v; want %q", got, err, self)
	}
}
