package worker

// This file bounds the bytes of request bodies a PushServer holds: one
// request's size (413 above MaxBodyBytes) and the sum over the requests in
// flight (429 with Retry-After above MaxBytesInFlight, which Pub/Sub and
// Eventarc answer by redelivering later).

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// DefaultMaxBytesInFlight is PushOptions.MaxBytesInFlight's default. Cloud
// Run's default instance has 512 MiB; a body is held while its message is
// decoded (the push envelope's base64 data is a second copy of about three
// quarters of it) and processed, so 96 MiB of bodies is at most about
// 200 MiB of message memory, leaving room for the runtime, the clients and
// the signer. It admits six bodies of the default maximum size at once, and
// any number of ordinary small ones up to MaxInFlight.
const DefaultMaxBytesInFlight = 96 << 20

// bodyChunk is the first reservation for a body of unknown length.
const bodyChunk = 32 << 10

// retryAfterSeconds is the Retry-After sent with 429.
const retryAfterSeconds = 1

// errOverBudget is a body refused because the bytes in flight would exceed
// the budget.
var errOverBudget = errors.New("too many request bytes in flight")

// byteBudget is a non-blocking counting semaphore over bytes: a request
// takes what its body needs or is refused at once; it never waits, so a
// burst is shed rather than queued.
type byteBudget struct {
	mu   sync.Mutex
	max  int64
	held int64
	peak int64 // the most ever held, for tests and metrics
}

func (b *byteBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || b.held+n > b.max {
		return false
	}
	b.held += n
	b.peak = max(b.peak, b.held)
	return true
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= n
}

// stats returns the bytes held now and the peak.
func (b *byteBudget) stats() (held, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held, b.peak
}

// readBody reads r's body within s's bounds. A body declared (Content-Length)
// or found larger than MaxBodyBytes gets 413 before it is read; a body that
// does not fit in the budget gets 429 with Retry-After. A declared length is
// reserved whole before reading; a body of unknown length is reserved as
// it arrives, each doubling of its buffer before it is allocated. On success the caller holds the bytes until it
// calls release; on failure the response is written and nothing is held.
func (s *PushServer) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), ok bool) {
	var held int64
	release = func() { s.budget.release(held); held = 0 }
	reserve := func(n int64) bool {
		if !s.budget.tryAcquire(n) {
			return false
		}
		held += n
		return true
	}
	fail := func(err error) ([]byte, func(), bool) {
		release()
		if errors.Is(err, errOverBudget) {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
			writeError(w, http.StatusTooManyRequests, "overloaded", "too many request bytes in flight; retry later")
			return nil, nil, false
		}
		writeBodyError(w, err, "unreadable_body")
		return nil, nil, false
	}
	if r.ContentLength > s.maxBody {
		return fail(&http.MaxBytesError{Limit: s.maxBody})
	}
	src := http.MaxBytesReader(w, r.Body, s.maxBody)
	if n := r.ContentLength; n >= 0 {
		if !reserve(n) {
			return fail(errOverBudget)
		}
		body = make([]byte, n)
		if _, err := io.ReadFull(src, body); err != nil {
			return fail(err)
		}
		return body, release, true
	}
	// Unknown length: grow by doubling, reserving each new capacity before
	// allocating it, so that what is held is what is allocated.
	for {
		if len(body) == cap(body) {
			grow := min(max(int64(cap(body)), bodyChunk), s.maxBody+1-int64(cap(body)))
			if !reserve(grow) {
				return fail(errOverBudget)
			}
			body = append(make([]byte, 0, int64(cap(body))+grow), body...)
		}
		n, err := src.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		switch {
		case errors.Is(err, io.EOF):
			return body, release, true
		case err != nil:
			return fail(err)
		}
	}
}
