package worker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/logging"
)

// counterValue returns the value of the counter name with exactly labels
// in reg, or 0 when it has not been created.
func counterValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func get(t *testing.T, srv *httptest.Server, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestOpsMux(t *testing.T) {
	ready := NewReadiness()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Published("results", nil)
	srv := httptest.NewServer(NewOpsMux(ready.Check, reg))
	defer srv.Close()

	steps := []struct {
		name       string
		set        func()
		method     string
		path       string
		wantStatus int
		wantBody   string // substring
	}{
		{name: "alive while starting", method: "GET", path: "/healthz", wantStatus: 200, wantBody: "ok"},
		{name: "not ready while starting", method: "GET", path: "/readyz", wantStatus: 503, wantBody: "not ready: starting"},
		{name: "ready", set: func() { ready.Set(nil) }, method: "GET", path: "/readyz", wantStatus: 200, wantBody: "ok"},
		{name: "draining", set: func() { ready.Set(errors.New("shutting down")) }, method: "GET", path: "/readyz", wantStatus: 503, wantBody: "shutting down"},
		{name: "still alive while draining", method: "GET", path: "/healthz", wantStatus: 200, wantBody: "ok"},
		{name: "HEAD health", method: "HEAD", path: "/healthz", wantStatus: 200},
		{name: "metrics", method: "GET", path: "/metrics", wantStatus: 200, wantBody: `linkissuer_published_total{result="ok",topic="results"} 1`},
		{name: "POST is not allowed", method: "POST", path: "/healthz", wantStatus: 405},
		{name: "unknown path", method: "GET", path: "/nothing", wantStatus: 404},
	}
	for _, st := range steps {
		if st.set != nil {
			st.set()
		}
		status, body := get(t, srv, st.method, st.path)
		if status != st.wantStatus || !strings.Contains(body, st.wantBody) {
			t.Errorf("%s: %s %s = %d %q, want %d containing %q", st.name, st.method, st.path, status, body, st.wantStatus, st.wantBody)
		}
	}
}

func TestOpsMuxDefaults(t *testing.T) {
	// A nil ready func is always ready; a nil gatherer serves the default
	// registry, which always has the Go collector.
	srv := httptest.NewServer(NewOpsMux(nil, nil))
	defer srv.Close()
	if status, _ := get(t, srv, "GET", "/readyz"); status != 200 {
		t.Errorf("readyz = %d, want 200", status)
	}
	if status, body := get(t, srv, "GET", "/metrics"); status != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics = %d, want 200 with go_goroutines", status)
	}
}

func TestMuxWithPushRoutes(t *testing.T) {
	// Cloud Run serves one port: the ops routes and the push server share
	// a mux, the push server taking everything else.
	h := newPushHarness(t, PushOptions{InsecureSkipAuth: true})
	mux := NewOpsMux(nil, h.reg)
	mux.Handle("/", h.push)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if status, _ := get(t, srv, "GET", "/healthz"); status != 200 {
		t.Errorf("healthz = %d, want 200", status)
	}
	resp, err := srv.Client().Post(srv.URL+PathPush, "application/json", strings.NewReader(string(envelope(t, nil, nil, nil))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(h.received()) != 1 {
		t.Errorf("push through the shared mux = %d with %d deliveries, want 204 and 1", resp.StatusCode, len(h.received()))
	}
	if _, body := get(t, srv, "GET", "/metrics"); !strings.Contains(body, `linkissuer_http_requests_total{code="204",route="/pubsub/push"} 1`) {
		t.Errorf("metrics do not count the push request:\n%s", body)
	}
}

// Fixtures shared by the HTTP tests of this file and push_test.go.

// pushHarness is a real Router (recording handler, recording publisher)
// behind a PushServer on an in-process HTTP server.
type pushHarness struct {
	srv    *httptest.Server
	push   *PushServer
	mu     sync.Mutex
	msgs   []*Message
	outs   []Output
	handle func(ctx context.Context, m *Message) ([]Output, error)
	pubErr error
	logs   bytes.Buffer
	reg    *prometheus.Registry
}

func (h *pushHarness) Publish(_ context.Context, outs ...Output) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pubErr != nil {
		return h.pubErr
	}
	h.outs = append(h.outs, outs...)
	return nil
}

func (h *pushHarness) published() []Output {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Output(nil), h.outs...)
}

func (h *pushHarness) received() []*Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Message(nil), h.msgs...)
}

// newPushHarness starts a server; o's Logger and Metrics are filled in.
func newPushHarness(t *testing.T, o PushOptions) *pushHarness {
	t.Helper()
	h := &pushHarness{}
	log, err := logging.New(&lockedWriter{w: &h.logs, mu: &h.mu}, "debug")
	if err != nil {
		t.Fatal(err)
	}
	handler := func(ctx context.Context, m *Message) ([]Output, error) {
		h.mu.Lock()
		h.msgs = append(h.msgs, m)
		fn := h.handle
		h.mu.Unlock()
		if fn != nil {
			return fn(ctx, m)
		}
		return []Output{{Topic: "results", Data: []byte("link")}}, nil
	}
	r, err := NewRouter(handler, h, RouterOptions{
		DeadLetter: func(m *Message, code failure.Code, _ error) (Output, error) {
			return Output{Topic: "errors", Data: m.Data, Attributes: map[string]string{"reason_code": string(code)}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	o.Logger, o.Metrics = log, NewHTTPMetrics(h.reg)
	h.push, err = NewPushServer(r, &o)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.push)
	t.Cleanup(h.srv.Close)
	return h
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// post sends body to path with headers and returns the status and the
// decoded error code, if any.
func (h *pushHarness) post(t *testing.T, path string, header http.Header, body []byte) (int, string) {
	t.Helper()
	status, code, err := h.postErr(path, header, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, code
}

// postErr is post for goroutines other than the test's.
func (h *pushHarness) postErr(path string, header http.Header, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	var eb errorBody
	_ = json.Unmarshal(raw, &eb) // success bodies are not error bodies
	return resp.StatusCode, eb.Error.Code, nil
}

func envelope(t *testing.T, data []byte, attrs map[string]string, extra map[string]any) []byte {
	t.Helper()
	msg := map[string]any{
		"data": base64.StdEncoding.EncodeToString(data), "attributes": attrs,
		"messageId": "123", "message_id": "123",
		"publishTime": "2026-03-01T10:00:00.123Z", "publish_time": "2026-03-01T10:00:00.123Z",
	}
	env := map[string]any{"message": msg, "subscription": "projects/p/subscriptions/s"}
	for k, v := range extra {
		env[k] = v
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// /readyz tells the truth about the signer and the publisher: a component
// that failed UnhealthyAfter times in a row makes the process not ready,
// naming it, until its next success. Before, /readyz said ok whenever the
// process had started.
func TestReadinessFollowsComponentHealth(t *testing.T) {
	ready := NewReadiness()
	ready.Set(nil)
	srv := httptest.NewServer(NewOpsMux(ready.Check, prometheus.NewRegistry()))
	defer srv.Close()
	denied := errors.New("signBlob: HTTP 403 PERMISSION_DENIED")
	steps := []struct {
		name       string
		observe    func()
		wantStatus int
		wantBody   string
	}{
		{name: "one failure is not a verdict", observe: func() { ready.Observe("signer", denied) }, wantStatus: 200, wantBody: "ok"},
		{name: "cancellations do not count", observe: func() {
			for range UnhealthyAfter {
				ready.Observe("publisher", context.Canceled)
			}
		}, wantStatus: 200, wantBody: "ok"},
		{name: "failures in a row", observe: func() {
			for range UnhealthyAfter - 1 {
				ready.Observe("signer", denied)
			}
		}, wantStatus: 503, wantBody: "signer failing: 5 failures in a row, last: signBlob: HTTP 403"},
		{name: "another component's success does not hide it", observe: func() { ready.Observe("publisher", nil) }, wantStatus: 503, wantBody: "signer failing"},
		{name: "its own success clears it", observe: func() { ready.Observe("signer", nil) }, wantStatus: 200, wantBody: "ok"},
	}
	for _, st := range steps {
		st.observe()
		status, body := get(t, srv, "GET", "/readyz")
		if status != st.wantStatus || !strings.Contains(body, st.wantBody) {
			t.Errorf("%s: /readyz = %d %q, want %d containing %q", st.name, status, body, st.wantStatus, st.wantBody)
		}
	}
}
