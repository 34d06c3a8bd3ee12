package worker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/idtokentest"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

func TestPushEnvelope(t *testing.T) {
	attrs := map[string]string{"eventType": "OBJECT_FINALIZE", "bucketId": "b"}
	tests := []struct {
		name       string
		header     http.Header
		body       []byte
		handle     func(ctx context.Context, m *Message) ([]Output, error)
		pubErr     error
		wantStatus int
		wantCode   string
		wantCalls  int
		wantTopic  string // of the one published output
		check      func(t *testing.T, m *Message)
	}{
		{name: "wrapped, issued", body: envelope(t, []byte(`{"x":1}`), attrs, map[string]any{"deliveryAttempt": 3}),
			wantStatus: 204, wantCalls: 1, wantTopic: "results",
			check: func(t *testing.T, m *Message) {
				want := &Message{ID: "123", Data: []byte(`{"x":1}`), Attributes: attrs, DeliveryAttempt: 3,
					PublishTime: time.Date(2026, 3, 1, 10, 0, 0, 123e6, time.UTC), Subscription: "projects/p/subscriptions/s"}
				if m.ID != want.ID || string(m.Data) != string(want.Data) || m.Attributes["eventType"] != "OBJECT_FINALIZE" ||
					m.DeliveryAttempt != 3 || !m.PublishTime.Equal(want.PublishTime) || m.Subscription != want.Subscription {
					t.Errorf("message = %+v, want %+v", m, want)
				}
			}},
		{name: "snake-case id only", body: []byte(`{"message":{"data":"aGk=","message_id":"77"},"subscription":"s"}`),
			wantStatus: 204, wantCalls: 1, wantTopic: "results",
			check: func(t *testing.T, m *Message) {
				if m.ID != "77" || string(m.Data) != "hi" || !m.PublishTime.IsZero() {
					t.Errorf("message = %+v", m)
				}
			}},
		{name: "transient failure is redelivered", body: envelope(t, nil, attrs, nil),
			handle:     func(context.Context, *Message) ([]Output, error) { return nil, errors.New("boom") },
			wantStatus: 503, wantCode: "transient", wantCalls: 1},
		{name: "signer throttled is redelivered", body: envelope(t, nil, attrs, nil),
			handle: func(context.Context, *Message) ([]Output, error) {
				return nil, &sign.RetryableError{Err: errors.New("429")}
			},
			wantStatus: 503, wantCode: "signer_unavailable", wantCalls: 1},
		{name: "invalid data is dead-lettered and acked", body: envelope(t, []byte("{"), attrs, nil),
			handle: func(context.Context, *Message) ([]Output, error) {
				return nil, &schema.FieldError{Field: "data", Reason: "malformed", Code: schema.CodeInvalidJSON}
			},
			wantStatus: 204, wantCalls: 1, wantTopic: "errors"},
		{name: "dead-letter publish failure is redelivered", body: envelope(t, nil, attrs, nil),
			handle: func(context.Context, *Message) ([]Output, error) {
				return nil, &policy.Refusal{Code: "bucket_not_allowed"}
			},
			pubErr:     errors.New("unavailable"),
			wantStatus: 503, wantCode: "dead_letter_publish_failed", wantCalls: 1},
		{name: "ignored is acked", body: envelope(t, nil, attrs, nil),
			handle:     func(context.Context, *Message) ([]Output, error) { return nil, failure.Ignore("metadata_update") },
			wantStatus: 204, wantCalls: 1},
		{name: "not JSON", body: []byte("hello"), wantStatus: 400, wantCode: "bad_envelope"},
		{name: "no message", body: []byte(`{"subscription":"s"}`), wantStatus: 400, wantCode: "bad_envelope"},
		{name: "no message id", body: []byte(`{"message":{"data":"aGk="}}`), wantStatus: 400, wantCode: "bad_envelope"},
		{name: "data not base64", body: []byte(`{"message":{"data":"!!","messageId":"1"}}`), wantStatus: 400, wantCode: "bad_envelope"},
		{name: "bad publish time", body: []byte(`{"message":{"messageId":"1","publishTime":"yesterday"}}`), wantStatus: 400, wantCode: "bad_envelope"},
		{name: "unwrapped with metadata",
			header: http.Header{
				"X-Goog-Pubsub-Message-Id":        {"555"},
				"X-Goog-Pubsub-Publish-Time":      {"2026-03-01T10:00:00Z"},
				"X-Goog-Pubsub-Subscription-Name": {"projects/p/subscriptions/raw"},
				"Eventtype":                       {"OBJECT_FINALIZE"},
				"Objectgeneration":                {"42"},
				"Schema":                          {"linkissuer.job.v1"},
				"X-Custom-Attr":                   {"v"},
				"Content-Type":                    {"application/json"},
				"X-Cloud-Trace-Context":           {"105445aa7843bc8bf206b12000100000/1;o=1"},
				"X-Forwarded-For":                 {"10.0.0.1"},
			},
			body: []byte(`{"raw":true}`), wantStatus: 204, wantCalls: 1, wantTopic: "results",
			check: func(t *testing.T, m *Message) {
				want := map[string]string{"eventType": "OBJECT_FINALIZE", "objectGeneration": "42", "schema": "linkissuer.job.v1", "x-custom-attr": "v"}
				if m.ID != "555" || string(m.Data) != `{"raw":true}` || m.Subscription != "projects/p/subscriptions/raw" ||
					!m.PublishTime.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
					t.Errorf("message = %+v", m)
				}
				if fmt.Sprint(m.Attributes) != fmt.Sprint(want) {
					t.Errorf("attributes = %v, want %v", m.Attributes, want)
				}
			}},
		{name: "unwrapped bad publish time", header: http.Header{"X-Goog-Pubsub-Message-Id": {"1"}, "X-Goog-Pubsub-Publish-Time": {"soon"}},
			body: []byte("x"), wantStatus: 400, wantCode: "bad_envelope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newPushHarness(t, PushOptions{InsecureSkipAuth: true})
			h.handle, h.pubErr = tc.handle, tc.pubErr
			status, code := h.post(t, PathPush, tc.header, tc.body)
			if status != tc.wantStatus || code != tc.wantCode {
				t.Fatalf("got %d %q, want %d %q", status, code, tc.wantStatus, tc.wantCode)
			}
			msgs := h.received()
			if len(msgs) != tc.wantCalls {
				t.Fatalf("handler ran %d times, want %d", len(msgs), tc.wantCalls)
			}
			if outs := h.published(); tc.wantTopic != "" && (len(outs) != 1 || outs[0].Topic != tc.wantTopic) {
				t.Errorf("published %+v, want one output to %s", outs, tc.wantTopic)
			}
			if tc.check != nil {
				tc.check(t, msgs[0])
			}
		})
	}
}

func TestPushLimits(t *testing.T) {
	t.Run("body too large", func(t *testing.T) {
		h := newPushHarness(t, PushOptions{InsecureSkipAuth: true, MaxBodyBytes: 1024})
		status, code := h.post(t, PathPush, nil, envelope(t, bytes.Repeat([]byte("a"), 2048), nil, nil))
		if status != http.StatusRequestEntityTooLarge || code != "too_large" || len(h.received()) != 0 {
			t.Errorf("got %d %q with %d handler calls, want 413 too_large and none", status, code, len(h.received()))
		}
	})
	t.Run("method and route", func(t *testing.T) {
		h := newPushHarness(t, PushOptions{InsecureSkipAuth: true})
		resp, err := h.srv.Client().Get(h.srv.URL + PathPush)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET: %d Allow=%q, want 405 Allow=POST", resp.StatusCode, resp.Header.Get("Allow"))
		}
		if status, _ := h.post(t, "/elsewhere", nil, nil); status != http.StatusNotFound {
			t.Errorf("unknown route: %d, want 404", status)
		}
		if status, _ := h.post(t, PathLinks, nil, []byte(`{}`)); status != http.StatusNotFound {
			t.Errorf("links without an issuer: %d, want 404", status)
		}
	})
	t.Run("handler timeout is redelivered", func(t *testing.T) {
		h := newPushHarness(t, PushOptions{InsecureSkipAuth: true, HandlerTimeout: time.Millisecond})
		h.handle = func(ctx context.Context, _ *Message) ([]Output, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if status, code := h.post(t, PathPush, nil, envelope(t, nil, nil, nil)); status != 503 || code != "cancelled" {
			t.Errorf("got %d %q, want 503 cancelled", status, code)
		}
	})
	t.Run("overload is shed with 429", func(t *testing.T) {
		h := newPushHarness(t, PushOptions{InsecureSkipAuth: true, MaxInFlight: 1})
		entered, release := make(chan struct{}), make(chan struct{})
		h.handle = func(context.Context, *Message) ([]Output, error) {
			close(entered)
			<-release
			return nil, nil
		}
		first := make(chan int, 1)
		body := envelope(t, nil, nil, nil)
		go func() {
			status, _, err := h.postErr(PathPush, nil, body)
			if err != nil {
				t.Error(err)
			}
			first <- status
		}()
		<-entered
		status, code := h.post(t, PathPush, nil, envelope(t, nil, nil, nil))
		close(release)
		if status != http.StatusTooManyRequests || code != "overloaded" {
			t.Errorf("second request: %d %q, want 429 overloaded", status, code)
		}
		if s := <-first; s != http.StatusNoContent {
			t.Errorf("first request: %d, want 204", s)
		}
		for code, want := range map[string]float64{"429": 1, "204": 1, "503": 0} {
			if n := counterValue(t, h.reg, "linkissuer_http_requests_total", map[string]string{"route": PathPush, "code": code}); n != want {
				t.Errorf("%s responses counted: %v, want %v", code, n, want)
			}
		}
	})
}

func TestPushRequestLogHasTrace(t *testing.T) {
	h := newPushHarness(t, PushOptions{InsecureSkipAuth: true, Project: "proj"})
	hdr := http.Header{"X-Cloud-Trace-Context": {"105445aa7843bc8bf206b12000100000/1;o=1"}}
	if status, _ := h.post(t, PathPush, hdr, envelope(t, nil, nil, nil)); status != 204 {
		t.Fatalf("status %d", status)
	}
	h.mu.Lock()
	logs := h.logs.String()
	h.mu.Unlock()
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if e["message"] == "push request" {
			found = true
			if e[logging.KeyTrace] != "projects/proj/traces/105445aa7843bc8bf206b12000100000" || e["message_id"] != "123" ||
				e["status"] != float64(204) || e["severity"] != "DEBUG" {
				t.Errorf("request log = %v", e)
			}
		}
	}
	if !found {
		t.Fatalf("no request log line in:\n%s", logs)
	}
}

const storageObject = `{"kind":"storage#object","bucket":"media","name":"in/a b%.txt","generation":"1712345678901234","size":"5","contentType":"text/plain"}`

func TestEvents(t *testing.T) {
	binary := http.Header{
		"Content-Type":   {"application/json"},
		"Ce-Id":          {"evt-1"},
		"Ce-Specversion": {"1.0"},
		"Ce-Type":        {schema.CloudEventFinalized},
		"Ce-Source":      {"//storage.googleapis.com/projects/_/buckets/media"},
		"Ce-Subject":     {"objects/in/a%20b%25.txt"}, // percent-encoded as the HTTP binding requires
		"Ce-Time":        {"2026-03-01T10:00:00.5Z"},
		"Ce-Bucket":      {"media"},
	}
	structured := func(mut func(map[string]any)) []byte {
		ev := map[string]any{
			"specversion": "1.0", "id": "evt-1", "type": schema.CloudEventFinalized,
			"source": "//storage.googleapis.com/projects/_/buckets/media", "subject": "objects/in/a b%.txt",
			"time": "2026-03-01T10:00:00.5Z", "datacontenttype": "application/json", "bucket": "media",
			"data": json.RawMessage(storageObject),
		}
		if mut != nil {
			mut(ev)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ceJSON := http.Header{"Content-Type": {"application/cloudevents+json; charset=utf-8"}}
	tests := []struct {
		name       string
		header     http.Header
		body       []byte
		wantStatus int
		wantParsed bool // the router saw a message that schema parses
	}{
		{name: "binary", header: binary, body: []byte(storageObject), wantStatus: 204, wantParsed: true},
		{name: "structured", header: ceJSON, body: structured(nil), wantStatus: 204, wantParsed: true},
		{name: "structured base64", header: ceJSON, body: structured(func(ev map[string]any) {
			delete(ev, "data")
			ev["data_base64"] = base64.StdEncoding.EncodeToString([]byte(storageObject))
		}), wantStatus: 204, wantParsed: true},
		{name: "binary without id", header: http.Header{"Ce-Specversion": {"1.0"}}, body: []byte(storageObject), wantStatus: 400},
		{name: "plain JSON is not an event", header: http.Header{"Content-Type": {"application/json"}}, body: []byte(storageObject), wantStatus: 400},
		{name: "structured not JSON", header: ceJSON, body: []byte("{"), wantStatus: 400},
		{name: "structured without specversion", header: ceJSON, body: structured(func(ev map[string]any) { delete(ev, "specversion") }), wantStatus: 400},
		{name: "structured bad base64", header: ceJSON, body: structured(func(ev map[string]any) { ev["data_base64"] = "!!" }), wantStatus: 400},
		{name: "batch", header: http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, body: []byte("[]"), wantStatus: 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newPushHarness(t, PushOptions{InsecureSkipAuth: true})
			var parsed *schema.ObjectEvent
			var parseErr error
			h.handle = func(_ context.Context, m *Message) ([]Output, error) {
				ev, err := schema.ParseCloudEventAttributes(context.Background(), m.Attributes, m.Data)
				h.mu.Lock()
				parsed, parseErr = ev, err
				h.mu.Unlock()
				return nil, nil
			}
			status, _ := h.post(t, PathEvents, tc.header, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d", status, tc.wantStatus)
			}
			msgs := h.received()
			if !tc.wantParsed {
				if len(msgs) != 0 {
					t.Errorf("router ran on a bad envelope")
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("router ran %d times, want 1", len(msgs))
			}
			m := msgs[0]
			if m.ID != "evt-1" || m.Attributes["ce-type"] != schema.CloudEventFinalized || m.Attributes["ce-bucket"] != "media" ||
				!m.PublishTime.Equal(time.Date(2026, 3, 1, 10, 0, 0, 5e8, time.UTC)) {
				t.Errorf("message = %+v", m)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if parseErr != nil {
				t.Fatalf("schema refused the converted event: %v", parseErr)
			}
			if parsed.Bucket != "media" || parsed.Object != "in/a b%.txt" || parsed.Generation != 1712345678901234 {
				t.Errorf("parsed = %+v", parsed)
			}
		})
	}
}

const (
	pushSA  = "pubsub-push@proj.iam.gserviceaccount.com"
	pushAud = "https://linkissuer.example.run.app/pubsub/push"
)

func TestPushAuthentication(t *testing.T) {
	iss := idtokentest.New(t)
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(mut func(map[string]any)) map[string]any {
		c := idtokentest.Claims(pushAud, pushSA)
		if mut != nil {
			mut(c)
		}
		return c
	}
	bearer := func(c map[string]any) string { return "Bearer " + iss.Token(t, c) }
	tests := []struct {
		name       string
		auth       string
		wantStatus int
		wantCode   string
	}{
		{"valid", bearer(claims(nil)), 204, ""},
		{"valid, email in other case", bearer(claims(func(c map[string]any) { c["email"] = strings.ToUpper(pushSA) })), 204, ""},
		{"missing", "", 401, "missing_token"},
		{"not bearer", "Basic dXNlcjpwYXNz", 401, "missing_token"},
		{"malformed", "Bearer not-a-jwt", 401, "invalid_token"},
		{"expired", bearer(claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), 401, "invalid_token"},
		{"wrong audience", bearer(claims(func(c map[string]any) { c["aud"] = "https://elsewhere.example/pubsub/push" })), 401, "wrong_audience"},
		{"wrong issuer", bearer(claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), 401, "invalid_token"},
		{"wrong email", bearer(claims(func(c map[string]any) { c["email"] = "intruder@proj.iam.gserviceaccount.com" })), 403, "forbidden"},
		{"email not verified", bearer(claims(func(c map[string]any) { c["email_verified"] = false })), 403, "forbidden"},
		{"no email", bearer(claims(func(c map[string]any) { delete(c, "email") })), 403, "forbidden"},
		{"signed by another key", "Bearer " + idtokentest.Sign(t, stranger, idtokentest.KeyID, claims(nil)), 401, "invalid_token"},
		{"unknown key id", "Bearer " + idtokentest.Sign(t, iss.Key, "k2", claims(nil)), 401, "invalid_token"},
		{"signature removed by the platform", "Bearer " + strings.Join(strings.Split(iss.Token(t, claims(nil)), ".")[:2], ".") + ".SIGNATURE_REMOVED_BY_GOOGLE", 401, "signature_removed"},
	}
	h := newPushHarness(t, PushOptions{Audiences: []string{pushAud}, AllowedEmails: []string{pushSA}, Validator: iss.Validator(t)})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.received())
			status, code := h.post(t, PathPush, http.Header{"Authorization": {tc.auth}}, envelope(t, nil, nil, nil))
			if status != tc.wantStatus || code != tc.wantCode {
				t.Fatalf("got %d %q, want %d %q", status, code, tc.wantStatus, tc.wantCode)
			}
			calls := len(h.received()) - before
			if want := map[bool]int{true: 1, false: 0}[tc.wantStatus == 204]; calls != want {
				t.Errorf("router ran %d times, want %d", calls, want)
			}
		})
	}
}

// TestPushAuthenticationNeverTrustsHost: the audience is configuration,
// never the request's Host header; a token minted for another service
// and sent with that service's Host is refused, and push authentication
// without audiences does not start.
func TestPushAuthenticationNeverTrustsHost(t *testing.T) {
	iss := idtokentest.New(t)
	r, err := NewRouter(func(context.Context, *Message) ([]Output, error) { return nil, nil }, &fakePublisher{},
		RouterOptions{DeadLetter: DeadLetters("w", nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPushServer(r, &PushOptions{AllowedEmails: []string{pushSA}, Validator: iss.Validator(t)}); err == nil {
		t.Fatal("a push server without audiences started; it would take the audience from the Host header")
	}
	h := newPushHarness(t, PushOptions{Audiences: []string{pushAud}, AllowedEmails: []string{pushSA}, Validator: iss.Validator(t)})
	token := func(aud string) string {
		c := idtokentest.Claims(aud, pushSA)
		c["iss"] = "accounts.google.com"
		return "Bearer " + iss.Token(t, c)
	}
	const other = "other-service.example.run.app"
	tests := []struct {
		name, aud, host string
		want            int
	}{
		{"our audience", pushAud, "", 204},
		{"another service's token with its Host", "https://" + other + PathPush, other, 401},
		{"another service's origin with its Host", "https://" + other, other, 401},
		{"the test server's own URL", h.srv.URL + PathPush, "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, h.srv.URL+PathPush, bytes.NewReader(envelope(t, nil, nil, nil)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", token(tc.aud))
			req.Header.Set("X-Forwarded-Proto", "https")
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestPushAuthenticationDefaultValidator(t *testing.T) {
	// The production default (idtoken.Validate against Google) refuses
	// malformed tokens before any network access.
	h := newPushHarness(t, PushOptions{Audiences: []string{pushAud}, AllowedEmails: []string{pushSA}})
	for _, auth := range []string{"", "Bearer a.b", "Bearer a.b.c", "Bearer " + strings.Repeat("x", 100)} {
		if status, _ := h.post(t, PathPush, http.Header{"Authorization": {auth}}, envelope(t, nil, nil, nil)); status != 401 {
			t.Errorf("%q: status %d, want 401", auth, status)
		}
	}
	if n := len(h.received()); n != 0 {
		t.Errorf("router ran %d times, want 0", n)
	}
}

func TestPushAuthenticationCertsUnavailable(t *testing.T) {
	iss := idtokentest.New(t)
	v := iss.Validator(t)
	iss.Certs.Close() // Google's certificate endpoint is unreachable
	h := newPushHarness(t, PushOptions{Audiences: []string{pushAud}, AllowedEmails: []string{pushSA}, Validator: v})
	tok := iss.Token(t, idtokentest.Claims(pushAud, pushSA))
	status, code := h.post(t, PathPush, http.Header{"Authorization": {"Bearer " + tok}}, envelope(t, nil, nil, nil))
	if status != 503 || code != "auth_unavailable" || len(h.received()) != 0 {
		t.Errorf("got %d %q, want 503 auth_unavailable and no router call", status, code)
	}
}

func TestPushOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		o       *PushOptions
		wantErr bool
	}{
		{"nil needs emails", nil, true},
		{"auth without emails", &PushOptions{}, true},
		{"auth with emails and audiences", &PushOptions{AllowedEmails: []string{pushSA}, Audiences: []string{pushAud}}, false},
		{"auth without audiences", &PushOptions{AllowedEmails: []string{pushSA}}, true},
		{"byte budget below the body limit", &PushOptions{InsecureSkipAuth: true, MaxBodyBytes: 2 << 20, MaxBytesInFlight: 1 << 20}, true},
		{"negative byte budget", &PushOptions{InsecureSkipAuth: true, MaxBytesInFlight: -1}, true},
		{"insecure", &PushOptions{InsecureSkipAuth: true}, false},
		{"bad email", &PushOptions{AllowedEmails: []string{"pubsub"}}, true},
		{"empty audience", &PushOptions{AllowedEmails: []string{pushSA}, Audiences: []string{""}}, true},
		{"negative body", &PushOptions{InsecureSkipAuth: true, MaxBodyBytes: -1}, true},
		{"negative in flight", &PushOptions{InsecureSkipAuth: true, MaxInFlight: -1}, true},
		{"negative timeout", &PushOptions{InsecureSkipAuth: true, HandlerTimeout: -1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.Validate(); (err != nil) != tc.wantErr {
				t.Errorf("Validate() = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

// fakeIssuer is a LinkIssuer returning a fixed link or error.
type fakeIssuer struct {
	mu   sync.Mutex
	reqs []LinkRequest
	err  error
}

func (f *fakeIssuer) requests() []LinkRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LinkRequest(nil), f.reqs...)
}

func (f *fakeIssuer) IssueLink(_ context.Context, req LinkRequest) (*schema.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return nil, f.err
	}
	return &schema.Link{Bucket: req.Bucket, Object: req.Object, Method: "GET", URL: "https://storage.googleapis.com/b/o?X-Goog-Signature=abc"}, nil
}

func TestLinks(t *testing.T) {
	body := []byte(`{"bucket":"b","object":"o","generation":7,"method":"GET","expires_in":"15m"}`)
	tests := []struct {
		name       string
		body       []byte
		err        error
		wantStatus int
		wantCode   string
	}{
		{name: "issued", body: body, wantStatus: 200},
		{name: "refused by policy", body: body, err: fmt.Errorf("check: %w", &policy.Refusal{Code: policy.CodeBucketNotAllowed, Reason: "no"}), wantStatus: 403, wantCode: "bucket_not_allowed"},
		{name: "invalid", body: body, err: &schema.FieldError{Field: "expires_in", Reason: "too long", Code: schema.CodeExpiryOutOfRange}, wantStatus: 400, wantCode: "expiry_out_of_range"},
		{name: "signer input", body: body, err: &sign.InputError{Field: "object", Reason: "too long"}, wantStatus: 400, wantCode: "sign_refused"},
		{name: "storage outage", body: body, err: failure.Transient(failure.Storage, errors.New("503")), wantStatus: 503, wantCode: "storage_unavailable"},
		{name: "timed out", body: body, err: fmt.Errorf("stat: %w", context.DeadlineExceeded), wantStatus: 503, wantCode: "cancelled"},
		{name: "signer throttled", body: body, err: &sign.RetryableError{Err: errors.New("429")}, wantStatus: 503, wantCode: "signer_unavailable"},
		{name: "unknown failure", body: body, err: errors.New("secret internals"), wantStatus: 500, wantCode: "internal"},
		{name: "unknown field", body: []byte(`{"bucket":"b","objekt":"o"}`), wantStatus: 400, wantCode: "invalid_field"},
		{name: "lone surrogate in the object", body: []byte(`{"bucket":"b","object":"a\ud800"}`), wantStatus: 400, wantCode: "invalid_object_name"},
		{name: "lone surrogate in a batch item", body: []byte(`{"items":[{"bucket":"b","object":"a"},{"bucket":"b","object":"a\udc00"}]}`), wantStatus: 400, wantCode: "invalid_object_name"},
		{name: "invalid UTF-8 in the object", body: []byte("{\"bucket\":\"b\",\"object\":\"a\xff\"}"), wantStatus: 400, wantCode: "invalid_object_name"},
		{name: "not JSON", body: []byte(`bucket=b`), wantStatus: 400, wantCode: "invalid_json"},
		{name: "trailing data", body: []byte(`{"bucket":"b"} {}`), wantStatus: 400, wantCode: "invalid_json"},
		{name: "too large", body: []byte(`{"bucket":"` + strings.Repeat("b", MaxLinkRequestBytes) + `"}`), wantStatus: 413, wantCode: "too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIssuer{err: tc.err}
			h := newPushHarness(t, PushOptions{InsecureSkipAuth: true, Links: f})
			req, err := http.NewRequest(http.MethodPost, h.srv.URL+PathLinks, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, raw)
			}
			if tc.wantStatus == 200 {
				var l schema.Link
				if err := json.Unmarshal(raw, &l); err != nil || l.Bucket != "b" || l.URL == "" {
					t.Errorf("body %s (%v), want the link", raw, err)
				}
				if resp.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", resp.Header.Get("Cache-Control"))
				}
				want := LinkRequest{Bucket: "b", Object: "o", Generation: 7, Method: "GET", ExpiresIn: "15m"}
				if reqs := f.requests(); len(reqs) != 1 || !reflect.DeepEqual(reqs[0], want) {
					t.Errorf("issuer got %+v, want %+v", reqs, want)
				}
				return
			}
			var eb errorBody
			if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code != tc.wantCode || eb.Error.Message == "" {
				t.Errorf("error body %s, want code %q and a message", raw, tc.wantCode)
			}
			if strings.Contains(string(raw), "secret internals") {
				t.Errorf("internal error text leaked: %s", raw)
			}
		})
	}
}

func TestLinksAuthentication(t *testing.T) {
	iss := idtokentest.New(t)
	f := &fakeIssuer{}
	const aud = "https://linkissuer.example.run.app"
	h := newPushHarness(t, PushOptions{Audiences: []string{aud}, AllowedEmails: []string{pushSA}, Validator: iss.Validator(t), Links: f})
	body := []byte(`{"bucket":"b","object":"o"}`)
	if status, code := h.post(t, PathLinks, nil, body); status != 401 || code != "missing_token" {
		t.Errorf("no token: %d %q, want 401 missing_token", status, code)
	}
	tok := iss.Token(t, idtokentest.Claims(aud, pushSA))
	if status, _ := h.post(t, PathLinks, http.Header{"Authorization": {"Bearer " + tok}}, body); status != 200 {
		t.Fatalf("valid token: %d, want 200", status)
	}
	want := audit.Identity{Email: pushSA, Subject: idtokentest.Subject, Issuer: idtokentest.Issuer}
	if reqs := f.requests(); len(reqs) != 1 || reqs[0].Caller != want {
		t.Errorf("issuer got %+v, want one request from %+v", reqs, want)
	}
}

// TestPushEnvelopeOfLargestMessage: the envelope of a message of Pub/Sub's
// full size (base64, so a third larger than schema.MaxMessageBytes) is
// read, not refused as too large.
func TestPushEnvelopeOfLargestMessage(t *testing.T) {
	data := make([]byte, schema.MaxMessageBytes)
	body := envelope(t, data, map[string]string{"k": "v"}, nil)
	if len(body) <= schema.MaxMessageBytes || int64(len(body)) > DefaultMaxBodyBytes {
		t.Fatalf("envelope of %d bytes does not test what it should", len(body))
	}
	m, err := pushMessage(context.Background(), http.Header{}, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Data) != schema.MaxMessageBytes || m.Attributes["k"] != "v" {
		t.Errorf("message of %d bytes, attributes %v", len(m.Data), m.Attributes)
	}
}
