package worker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
)

// TestPushByteBudget sends 30 concurrent deliveries of about 1 MiB each to
// a server with a 4 MiB byte budget while the handler holds every message
// it gets. The bytes held at once (the bodies of the messages inside the
// handler, and the server's own count) never exceed the budget; the rest
// are shed with 429 and Retry-After for Pub/Sub to redeliver; once the
// handler lets go, everything is given back. Counted, not timed.
func TestPushByteBudget(t *testing.T) {
	const (
		n      = 30
		budget = 4 << 20
	)
	h := newPushHarness(t, PushOptions{InsecureSkipAuth: true, MaxBodyBytes: 2 << 20, MaxBytesInFlight: budget})
	body := envelope(t, bytes.Repeat([]byte("x"), 768<<10), nil, nil) // ~1 MiB after base64
	entered, release := make(chan int, n), make(chan struct{})
	h.handle = func(_ context.Context, m *Message) ([]Output, error) {
		entered <- len(body)
		<-release
		return nil, nil
	}
	type result struct {
		status     int
		retryAfter string
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := h.srv.Client().Post(h.srv.URL+PathPush, "application/json", bytes.NewReader(body))
			if err != nil {
				// The server answered 429 before reading the body and
				// closed the connection while the client was still
				// writing it; Pub/Sub retries that too.
				results <- result{status: -1}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("Retry-After")}
		}()
	}
	// Every request either reaches the handler (and stays there) or is
	// answered; wait until all 30 are one or the other.
	var inside, held, shed int
	var early []result
	for inside+len(early) < n {
		select {
		case size := <-entered:
			inside++
			held += size
		case r := <-results:
			early = append(early, r)
		}
	}
	for _, r := range early {
		if r.status != -1 && (r.status != http.StatusTooManyRequests || r.retryAfter == "") {
			t.Errorf("request answered while others were held: %d Retry-After=%q, want 429 with Retry-After", r.status, r.retryAfter)
		}
		shed++
	}
	if n := counterValue(t, h.reg, "linkissuer_http_requests_total", map[string]string{"route": PathPush, "code": "429"}); int(n) != shed {
		t.Errorf("server answered 429 %v times, %d requests were shed", n, shed)
	}
	serverHeld, peak := h.push.budget.stats()
	t.Logf("%d held (%d bytes, server counts %d, peak %d), %d shed", inside, held, serverHeld, peak, shed)
	if held > budget || serverHeld > budget || peak > budget {
		t.Errorf("bytes held at once: %d in the handler, %d counted, peak %d; budget %d", held, serverHeld, peak, budget)
	}
	if inside == 0 || int64(held) != serverHeld {
		t.Errorf("%d requests held with %d bytes, server counts %d: want some, counted exactly", inside, held, serverHeld)
	}
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusNoContent {
			t.Errorf("held request answered %d, want 204", r.status)
		}
	}
	if held, _ := h.push.budget.stats(); held != 0 {
		t.Errorf("%d bytes still counted after every request finished", held)
	}
}

// TestPushBodyLimit: a body over MaxBodyBytes gets 413 whether its length
// is declared or not, holds nothing afterwards, and a chunked body under the
// limit is read whole.
func TestPushBodyLimit(t *testing.T) {
	h := newPushHarness(t, PushOptions{InsecureSkipAuth: true, MaxBodyBytes: 100 << 10, MaxBytesInFlight: 1 << 20})
	big := envelope(t, bytes.Repeat([]byte("x"), 200<<10), nil, nil)
	small := envelope(t, bytes.Repeat([]byte("y"), 70<<10), nil, nil)
	tests := []struct {
		name    string
		body    []byte
		chunked bool
		want    int
	}{
		{name: "declared length over the limit", body: big, want: http.StatusRequestEntityTooLarge},
		{name: "chunked over the limit", body: big, chunked: true, want: http.StatusRequestEntityTooLarge},
		{name: "chunked under the limit", body: small, chunked: true, want: http.StatusNoContent},
		{name: "declared under the limit", body: small, want: http.StatusNoContent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				r = io.MultiReader(r) // hides the length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, h.srv.URL+PathPush, r)
			if err != nil {
				t.Fatal(err)
			}
			if tc.chunked && req.ContentLength != 0 {
				t.Fatalf("request has length %d, want unknown", req.ContentLength)
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if held, _ := h.push.budget.stats(); held != 0 {
				t.Errorf("%d bytes counted after the request", held)
			}
		})
	}
	msgs := h.received()
	if len(msgs) != 2 || len(msgs[0].Data) != 70<<10 || len(msgs[1].Data) != 70<<10 {
		t.Errorf("handler got %d messages, want the two under the limit, whole", len(msgs))
	}
}
