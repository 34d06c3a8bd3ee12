package links

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/linkissuer/linkissuer/worker"
)

// pushHarness is a worker.PushServer in process whose router publishes to
// memory: the push transport with the real issuance behind it.
type pushHarness struct {
	srv  *httptest.Server
	mu   sync.Mutex
	outs []worker.Output
}

// Publish implements worker.Publisher.
func (h *pushHarness) Publish(_ context.Context, outs ...worker.Output) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outs = append(h.outs, outs...)
	return nil
}

func (h *pushHarness) published() []worker.Output {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]worker.Output(nil), h.outs...)
}

// newPushHarness serves o with handle behind the router (nil: a handler
// that dead-letters everything, for servers that only answer /v1/links).
func newPushHarness(t *testing.T, o worker.PushOptions, handle ...worker.Handler) *pushHarness {
	t.Helper()
	h := &pushHarness{}
	handler := (&Issuer{}).Handle
	if len(handle) > 0 {
		handler = handle[0]
	}
	r, err := worker.NewRouter(handler, h, worker.RouterOptions{DeadLetter: worker.DeadLetters("test-push", nil)})
	if err != nil {
		t.Fatal(err)
	}
	push, err := worker.NewPushServer(r, &o)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(push)
	t.Cleanup(h.srv.Close)
	return h
}

// post sends body to path and returns the status and, for an error
// answer, its code.
func (h *pushHarness) post(t *testing.T, path string, header http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var eb errorBody
	_ = json.Unmarshal(raw, &eb) // success bodies are not error bodies
	return resp.StatusCode, eb.Error.Code
}

// fakePublisher keeps what it is given.
type fakePublisher struct{ got []worker.Output }

func (p *fakePublisher) Publish(_ context.Context, outs ...worker.Output) error {
	p.got = append(p.got, outs...)
	return nil
}

// errorBody is the JSON error answer of the push server.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}
