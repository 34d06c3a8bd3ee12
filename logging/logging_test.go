package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// entries decodes every line the logger wrote, failing on invalid JSON.
func entries(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func TestSeverityAndCloudLoggingKeys(t *testing.T) {
	tests := []struct {
		name string
		log  func(*zap.Logger)
		want string
	}{
		{"debug", func(l *zap.Logger) { l.Debug("m") }, "DEBUG"},
		{"info", func(l *zap.Logger) { l.Info("m") }, "INFO"},
		{"warn", func(l *zap.Logger) { l.Warn("m") }, "WARNING"},
		{"error", func(l *zap.Logger) { l.Error("m") }, "ERROR"},
		{"dpanic", func(l *zap.Logger) { l.DPanic("m") }, "CRITICAL"}, // no panic outside development mode
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, "debug")
			if err != nil {
				t.Fatal(err)
			}
			tc.log(l)
			es := entries(t, &buf)
			if len(es) != 1 {
				t.Fatalf("got %d entries, want 1", len(es))
			}
			e := es[0]
			if e["severity"] != tc.want {
				t.Errorf("severity = %v, want %s", e["severity"], tc.want)
			}
			if e["message"] != "m" {
				t.Errorf("message = %v, want m", e["message"])
			}
			ts, _ := e["time"].(string)
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
				t.Errorf("time %q is not RFC 3339 in UTC: %v", ts, err)
			}
			loc, _ := e[KeySourceLocation].(map[string]any)
			if file, _ := loc["file"].(string); !strings.HasSuffix(file, "logging/logging_test.go") {
				t.Errorf("sourceLocation.file = %q, want this test file", file)
			}
			if line, _ := loc["line"].(string); line == "" || strings.Trim(line, "0123456789") != "" {
				t.Errorf("sourceLocation.line = %q, want a decimal string", line)
			}
			if fn, _ := loc["function"].(string); !strings.Contains(fn, "TestSeverityAndCloudLoggingKeys") {
				t.Errorf("sourceLocation.function = %q, want the test function", fn)
			}
		})
	}
}

func TestSeverityTable(t *testing.T) {
	for l, want := range map[zapcore.Level]string{
		zapcore.DebugLevel: "DEBUG", zapcore.InfoLevel: "INFO", zapcore.WarnLevel: "WARNING",
		zapcore.ErrorLevel: "ERROR", zapcore.DPanicLevel: "CRITICAL", zapcore.PanicLevel: "ALERT",
		zapcore.FatalLevel: "EMERGENCY",
	} {
		if got := Severity(l); got != want {
			t.Errorf("Severity(%v) = %s, want %s", l, got, want)
		}
	}
}

func TestLevel(t *testing.T) {
	tests := []struct {
		level   string
		logged  []string // messages that pass among debug, info, warn, error
		wantErr bool
	}{
		{level: "", logged: []string{"info", "warn", "error"}},
		{level: "DEBUG", logged: []string{"debug", "info", "warn", "error"}},
		{level: "warning", logged: []string{"warn", "error"}},
		{level: "warn", logged: []string{"warn", "error"}},
		{level: "error", logged: []string{"error"}},
		{level: "verbose", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, tc.level)
			if tc.wantErr {
				if err == nil {
					t.Fatal("New accepted an unknown level")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("debug")
			l.Info("info")
			l.Warn("warn")
			l.Error("error")
			var got []string
			for _, e := range entries(t, &buf) {
				got = append(got, e["message"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.logged, ",") {
				t.Errorf("logged %v, want %v", got, tc.logged)
			}
		})
	}
}

// sig is shaped like a V4 RSA signature: 512 hex digits.
var sig = strings.Repeat("9f3a0b7c", 64)

func TestRedaction(t *testing.T) {
	gcsURL := "https://storage.googleapis.com/bkt/obj.txt?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20260101T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=" + sig
	s3URL := "https://bkt.s3.amazonaws.com/obj?X-Amz-Date=20260101T000000Z&x-amz-signature=" + sig + "&X-Amz-SignedHeaders=host"
	type link struct {
		URL       string            `json:"url"`
		Signature string            `json:"signature"`
		Fields    map[string]string `json:"fields"`
	}
	linkJSON, err := json.Marshal(link{URL: gcsURL, Signature: sig})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		log  func(*zap.Logger)
		keep []string // text that must survive
	}{
		{"message", func(l *zap.Logger) { l.Info("issued " + gcsURL) }, []string{"X-Goog-Date=20260101T000000Z", "issued https://storage.googleapis.com/bkt/obj.txt?"}},
		{"string field", func(l *zap.Logger) { l.Info("m", zap.String("url", gcsURL)) }, []string{"X-Goog-Expires=900"}},
		{"s3 url mixed case, middle of query", func(l *zap.Logger) { l.Info("m", zap.String("url", s3URL)) }, []string{"&X-Amz-SignedHeaders=host"}},
		{"error", func(l *zap.Logger) { l.Error("m", zap.Error(fmt.Errorf("GET %s: %w", gcsURL, errors.New("403")))) }, []string{"403"}},
		{"context field", func(l *zap.Logger) { l.With(zap.String("url", gcsURL)).Info("m") }, nil},
		{"reflected struct", func(l *zap.Logger) { l.Info("m", zap.Any("link", link{URL: gcsURL, Signature: sig})) }, nil},
		{"field named signature", func(l *zap.Logger) { l.Info("m", zap.String("Signature", sig)) }, nil},
		{"attribute map", func(l *zap.Logger) {
			l.Info("m", zap.Any("fields", map[string]string{"x-goog-signature": sig, "key": "obj"}))
		}, []string{`"key":"obj"`}},
		{"binary field", func(l *zap.Logger) { l.Info("m", zap.Binary("signature_bytes", []byte(sig))) }, nil},
		{"escaped JSON in a string", func(l *zap.Logger) { l.Info("m", zap.ByteString("data", linkJSON)) }, nil},
		{"percent-encoded inside another URL", func(l *zap.Logger) {
			l.Info("m", zap.String("redirect", "https://example.com/?next="+url.QueryEscape(gcsURL)))
		}, []string{"next=https%3A%2F%2Fstorage.googleapis.com"}},
		{"header style", func(l *zap.Logger) { l.Info("sent X-Goog-Signature: " + sig + " to server") }, []string{"to server"}},
		{"V2 signature", func(l *zap.Logger) {
			l.Info("m", zap.String("url", "https://storage.googleapis.com/b/o?GoogleAccessId=x&Expires=1&Signature=abc%2Bdef"+sig))
		}, []string{"GoogleAccessId=x&Expires=1&"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, "info")
			if err != nil {
				t.Fatal(err)
			}
			tc.log(l)
			out := buf.String()
			entries(t, &buf) // still valid JSON
			if strings.Contains(out, sig[:16]) {
				t.Fatalf("signature leaked:\n%s", out)
			}
			if !strings.Contains(out, Redacted) {
				t.Errorf("no %s marker:\n%s", Redacted, out)
			}
			for _, k := range tc.keep {
				if !strings.Contains(out, k) {
					t.Errorf("lost %q:\n%s", k, out)
				}
			}
		})
	}
}

func TestRedactLeavesOtherTextAlone(t *testing.T) {
	for _, s := range []string{
		"signature verification failed",
		"https://storage.googleapis.com/b/o?X-Goog-Date=20260101T000000Z",
		`{"signature_count":3}`,
		"",
	} {
		if got := Redact(s); got != s {
			t.Errorf("Redact(%q) = %q, want unchanged", s, got)
		}
	}
	if got, want := Redact("u?X-Goog-Signature="+sig+"&a=b"), "u?X-Goog-Signature=REDACTED&a=b"; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
}

func TestTrace(t *testing.T) {
	const traceID = "105445aa7843bc8bf206b12000100000"
	tests := []struct {
		name, project, header string
		wantTrace, wantSpan   string
		wantSampled           any // nil: key absent
	}{
		{name: "cloud with span and o=1", project: "p", header: traceID + "/1;o=1",
			wantTrace: "projects/p/traces/" + traceID, wantSpan: "0000000000000001", wantSampled: true},
		{name: "cloud large span", project: "p", header: traceID + "/18446744073709551615;o=0",
			wantTrace: "projects/p/traces/" + traceID, wantSpan: "ffffffffffffffff", wantSampled: false},
		{name: "cloud trace only", project: "p", header: traceID,
			wantTrace: "projects/p/traces/" + traceID},
		{name: "cloud upper-case trace", project: "p", header: strings.ToUpper(traceID) + "/7",
			wantTrace: "projects/p/traces/" + traceID, wantSpan: "0000000000000007"},
		{name: "traceparent sampled", project: "p", header: "00-" + traceID + "-00f067aa0ba902b7-01",
			wantTrace: "projects/p/traces/" + traceID, wantSpan: "00f067aa0ba902b7", wantSampled: true},
		{name: "traceparent not sampled", project: "p", header: "00-" + traceID + "-00f067aa0ba902b7-00",
			wantTrace: "projects/p/traces/" + traceID, wantSpan: "00f067aa0ba902b7", wantSampled: false},
		{name: "traceparent zero trace", project: "p", header: "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01"},
		{name: "traceparent version ff", project: "p", header: "ff-" + traceID + "-00f067aa0ba902b7-01"},
		{name: "cloud bad span", project: "p", header: traceID + "/x1;o=1"},
		{name: "short trace", project: "p", header: "abc/1;o=1"},
		{name: "empty header", project: "p"},
		{name: "no project", header: traceID + "/1;o=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, "info")
			if err != nil {
				t.Fatal(err)
			}
			l.Info("m", Trace(tc.project, tc.header))
			e := entries(t, &buf)[0]
			if got, _ := e[KeyTrace].(string); got != tc.wantTrace {
				t.Errorf("trace = %q, want %q", got, tc.wantTrace)
			}
			if got, _ := e[KeySpanID].(string); got != tc.wantSpan {
				t.Errorf("spanId = %q, want %q", got, tc.wantSpan)
			}
			if got := e[KeyTraceSampled]; got != tc.wantSampled {
				t.Errorf("trace_sampled = %v, want %v", got, tc.wantSampled)
			}
		})
	}
}

func TestTraceFromHeaders(t *testing.T) {
	const cloud, w3c = "11111111111111111111111111111111", "22222222222222222222222222222222"
	tests := []struct {
		name      string
		h         http.Header
		wantTrace string
	}{
		{"prefers X-Cloud-Trace-Context", http.Header{"X-Cloud-Trace-Context": {cloud + "/5;o=1"}, "Traceparent": {"00-" + w3c + "-00f067aa0ba902b7-01"}}, cloud},
		{"falls back to traceparent", http.Header{"X-Cloud-Trace-Context": {"junk"}, "Traceparent": {"00-" + w3c + "-00f067aa0ba902b7-01"}}, w3c},
		{"none", http.Header{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, "info")
			if err != nil {
				t.Fatal(err)
			}
			l.Info("m", TraceFromHeaders("proj", tc.h))
			got, _ := entries(t, &buf)[0][KeyTrace].(string)
			want := ""
			if tc.wantTrace != "" {
				want = "projects/proj/traces/" + tc.wantTrace
			}
			if got != want {
				t.Errorf("trace = %q, want %q", got, want)
			}
		})
	}
}
