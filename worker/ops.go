package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/logging"
)

// NewOpsMux serves the operational endpoints, unauthenticated:
//
//   - GET /healthz: 200 while the process serves HTTP (liveness).
//   - GET /readyz: 200 once ready returns nil, else 503 with its error as
//     the body (readiness). A nil ready is always ready.
//   - GET /metrics: the Prometheus text format from g (nil means
//     prometheus.DefaultGatherer).
//
// The push routes can be mounted on the same mux (mux.Handle("/", push)):
// Cloud Run gives a service one port.
func NewOpsMux(ready func() error, g prometheus.Gatherer) *http.ServeMux {
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		writeText(w, http.StatusOK, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		// A collector that fails should not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, body)
}

// errStarting is the readiness of a Readiness nobody has set yet.
var errStarting = errors.New("starting")

// UnhealthyAfter is how many consecutive failures make a component
// unhealthy in a Readiness.
const UnhealthyAfter = 5

// Readiness is the truth behind /readyz, safe for concurrent use. It
// starts not ready; the composition root calls Set(nil) once its clients
// are built and checked and Set(err) when shutdown begins, so that a load
// balancer stops sending before the server stops accepting. In between,
// components (the signer, the publisher, the receive loop) report each
// outcome through Observe: UnhealthyAfter failures in a row make the
// process not ready until that component's next success.
type Readiness struct {
	mu    sync.Mutex
	err   error
	comps map[string]*componentHealth
}

type componentHealth struct {
	failures int
	last     error
}

// NewReadiness returns a Readiness that is not ready yet.
func NewReadiness() *Readiness {
	return &Readiness{err: errStarting, comps: map[string]*componentHealth{}}
}

// Set records the state: nil is ready, an error says why not.
func (r *Readiness) Set(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// Observe records one outcome of component: nil is a success. A cancelled
// context says nothing about the component and is not counted.
func (r *Readiness) Observe(component string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.comps[component]
	if c == nil {
		c = &componentHealth{}
		r.comps[component] = c
	}
	if err == nil {
		c.failures, c.last = 0, nil
		return
	}
	c.failures++
	c.last = err
}

// Check returns nil when ready; it is the ready func of NewOpsMux.
func (r *Readiness) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	names := make([]string, 0, len(r.comps))
	for name, c := range r.comps {
		if c.failures >= UnhealthyAfter {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	c := r.comps[names[0]]
	return fmt.Errorf("%s failing: %d failures in a row, last: %w", names[0], c.failures, c.last)
}

// HTTPMetrics count push-server requests. A nil *HTTPMetrics records
// nothing.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewHTTPMetrics registers the push server's collectors with reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linkissuer_http_requests_total",
			Help: "Push-server requests by route and status code (429: shed for overload, 401/403: refused tokens).",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "linkissuer_http_request_seconds",
			Help:    "Push-server request duration by route, from the handler's start to its return.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *HTTPMetrics) observe(route string, code int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(elapsed.Seconds())
}

// logRequest writes the push server's one line per request: debug when it
// succeeded, info for a client error, warning for overload and server
// errors; with the trace, so the line sits under Cloud Run's request log.
func (s *PushServer) logRequest(r *http.Request, route string, status int, msgID string, elapsed time.Duration) {
	lvl := zap.DebugLevel
	switch {
	case status >= 500 || status == http.StatusTooManyRequests:
		lvl = zap.WarnLevel
	case status >= 400:
		lvl = zap.InfoLevel
	}
	if ce := s.log.Check(lvl, "push request"); ce != nil {
		ce.Write(
			zap.String("route", route),
			zap.Int("status", status),
			zap.String("message_id", msgID),
			zap.Duration("latency", elapsed),
			zap.String("user_agent", r.UserAgent()),
			logging.TraceFromHeaders(s.project, r.Header),
		)
	}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

// writeBodyError answers a failed body read: 413 over the limit, else 400
// with code.
func writeBodyError(w http.ResponseWriter, err error, code string) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", tooBig.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, code, "request body: "+err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the client may be gone; nothing to do then
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
