// Package minio starts a real MinIO server as a child process, for the
// integration tests that need an S3 implementation which checks every
// signature, expiry and POST policy the way AWS does.
//
// The server listens on a free loopback port, keeps its data in a temporary
// directory and is stopped by PID: Stop sends SIGTERM, waits, then kills
// (package childproc runs it). Nothing here is used by production code.
package minio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/linkissuer/linkissuer/internal/childproc"
)

// ErrNotInstalled means no minio binary was found.
var ErrNotInstalled = errors.New("minio not installed")

// BinEnv names an environment variable holding the minio binary's path; it
// overrides the search.
const BinEnv = "LINKISSUER_MINIO_BIN"

// RequireEnv names an environment variable that, when set, makes tests fail
// instead of skip when minio is missing (.ci/run sets it).
const RequireEnv = "LINKISSUER_REQUIRE_MINIO"

// CacheBin is where .ci/run installs minio, relative to the home directory.
const CacheBin = ".cache/linkissuer/bin"

// FindBinary locates minio: $LINKISSUER_MINIO_BIN, then ~/.cache/linkissuer/bin
// (where .ci/run caches it), then $PATH.
func FindBinary() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: $%s: %v", ErrNotInstalled, BinEnv, err)
		}
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, CacheBin, "minio")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: set $%s, or run: GOBIN=$HOME/%s go install github.com/minio/minio@latest",
		ErrNotInstalled, BinEnv, CacheBin)
}

// Options configure Start. A nil *Options means defaults.
type Options struct {
	// Region is the server's region (MINIO_SITE_REGION); us-east-1 by default.
	Region string
	// Log receives the server's output; nil discards it.
	Log io.Writer
	// StartTimeout bounds the wait for /minio/health/live; 60s by default.
	StartTimeout time.Duration
}

// Server is a running MinIO process.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// Host is 127.0.0.1:PORT.
	Host string
	// Region is the region the server signs and checks with.
	Region string
	// AccessKey and SecretKey are the root credentials (random per server).
	AccessKey string
	SecretKey string

	dataDir string
	proc    *childproc.Process
}

// Start launches MinIO on a free loopback port with a fresh data directory
// and random root credentials, and waits until /minio/health/live answers.
// The process is stopped by Stop, or when ctx is cancelled.
func Start(ctx context.Context, opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	bin, err := FindBinary()
	if err != nil {
		return nil, err
	}
	port, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "linkissuer-minio-")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Host:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Region:    o.Region,
		AccessKey: "linkissuer" + randomHex(4),
		SecretKey: randomHex(20),
		dataDir:   dataDir,
	}
	s.Endpoint = "http://" + s.Host
	cmd := exec.Command(bin, "server", "--quiet", "--address", s.Host, dataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_SITE_REGION="+o.Region,
		"MINIO_BROWSER=off", // no console: one port, less memory
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
	)
	s.proc, err = childproc.Start(ctx, cmd, childproc.Options{
		Log:       o.Log,
		StopGrace: 10 * time.Second,
		Cleanup:   func() { os.RemoveAll(dataDir) },
	})
	if err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	if err := s.proc.WaitReady(ctx, o.StartTimeout, s.live); err != nil {
		s.Stop()
		return nil, fmt.Errorf("minio on %s: %w", s.Host, err)
	}
	return s, nil
}

// live says whether the liveness endpoint answers 200.
func (s *Server) live(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/minio/health/live", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop ends the process by PID: SIGTERM, then SIGKILL after 10s. It waits
// for the exit and removes the data directory. It is safe to call twice.
func (s *Server) Stop() { s.proc.Stop() }

// PID is the server's process ID.
func (s *Server) PID() int { return s.proc.PID() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
