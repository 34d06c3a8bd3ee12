// Package audittest holds an in-memory audit sink for tests.
package audittest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/linkissuer/linkissuer/schema"
)

// Sink keeps the records written to it, in order; it implements
// audit.Sink. A non-nil Gate holds every write until it is closed (or the
// write's context ends).
type Sink struct {
	Gate chan struct{}

	mu   sync.Mutex
	recs []*schema.AuditRecord
	err  error
}

// Write implements audit.Sink.
func (s *Sink) Write(ctx context.Context, r *schema.AuditRecord) error {
	if s.Gate != nil {
		select {
		case <-s.Gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.recs = append(s.recs, r)
	return nil
}

// Fail makes every later write fail with err (nil: succeed again).
func (s *Sink) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Records returns the records written so far.
func (s *Sink) Records() []*schema.AuditRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recs)
}

// Outcome returns the records written so far with outcome.
func (s *Sink) Outcome(outcome string) []*schema.AuditRecord {
	var out []*schema.AuditRecord
	for _, r := range s.Records() {
		if r.Outcome == outcome {
			out = append(out, r)
		}
	}
	return out
}

// NoCredential fails t if any record written so far, as its message data,
// contains one of secrets (a token, a signature, a URL).
func (s *Sink) NoCredential(t testing.TB, secrets ...string) {
	t.Helper()
	for _, r := range s.Records() {
		data, err := r.Data()
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range secrets {
			if secret != "" && strings.Contains(string(data), secret) {
				t.Errorf("audit record %s carries a credential (%.12s...): %s", r.RecordID, secret, data)
			}
		}
	}
}
