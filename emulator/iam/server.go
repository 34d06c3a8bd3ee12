package iam

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is an Emulator listening on a TCP address. It owns the goroutine
// that serves; Close stops it.
type Server struct {
	*Emulator
	ln     net.Listener
	srv    *http.Server
	served chan error

	active   atomic.Int64 // requests being handled
	stopOnce sync.Once
	stopErr  error
}

// Start listens on addr (e.g. 127.0.0.1:0 for any free port) and serves an
// Emulator built from opts until Close.
func Start(addr string, opts *Options) (*Server, error) {
	e, err := New(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator listen: %w", err)
	}
	s := &Server{
		Emulator: e,
		ln:       ln,
		srv:      &http.Server{ReadHeaderTimeout: 10 * time.Second},
		served:   make(chan error, 1),
	}
	s.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.Add(1)
		defer s.active.Add(-1)
		e.ServeHTTP(w, r)
	})
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address listened on, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is http://host:port.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Endpoint is the value for sign/iam.Options.Endpoint (--iam-endpoint):
// the base URL the IAM Credentials client resolves v1/... against.
func (s *Server) Endpoint() string { return s.URL() + "/" }

// Close shuts the server down: held requests are answered 503 at once
// (Emulator.Close), requests being answered finish, at most until ctx is
// done, then every connection is closed and the serving goroutine has
// ended. It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.Emulator.Close()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for s.active.Load() > 0 && ctx.Err() == nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		err := s.srv.Close()
		if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = serr
		}
		if err == nil && s.active.Load() > 0 {
			err = ctx.Err()
		}
		s.stopErr = err
	})
	return s.stopErr
}
