// Package logging builds zap loggers whose JSON lines Cloud Logging reads as
// structured entries (severity, message, time, source location, trace), and
// which never write a URL signature.
//
// Contract:
//   - One JSON object per line. Keys: "severity" (DEBUG, INFO, WARNING,
//     ERROR, CRITICAL, ALERT, EMERGENCY), "message", "time" (RFC 3339 with
//     nanoseconds, UTC), "logging.googleapis.com/sourceLocation" ({file,
//     line, function}) and, when a Trace field is added,
//     "logging.googleapis.com/trace", "logging.googleapis.com/spanId" and
//     "logging.googleapis.com/trace_sampled".
//   - Redaction is applied to the encoded line, after every field, context
//     field (With), error text and nested object has been rendered, so no
//     field type escapes it: the values of X-Goog-Signature, X-Amz-Signature
//     and V2 Signature query parameters (also percent-encoded, or written as
//     "Name: value"), and the string value of any JSON key containing
//     "signature" (case-insensitive), become REDACTED.
package logging

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// Cloud Logging's special structured-log keys.
const (
	KeyTrace          = "logging.googleapis.com/trace"
	KeySpanID         = "logging.googleapis.com/spanId"
	KeyTraceSampled   = "logging.googleapis.com/trace_sampled"
	KeySourceLocation = "logging.googleapis.com/sourceLocation"
)

// Redacted replaces every secret the logger removes.
const Redacted = "REDACTED"

// New returns a logger that writes Cloud Logging JSON lines to w at level
// ("debug", "info", "warn" or "warning", "error"; "" means info). Writes to
// w are serialized, so w need not be safe for concurrent use.
func New(w io.Writer, level string) (*zap.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	// One lock for entries and zap's own error messages: both go to w.
	ws := zapcore.Lock(zapcore.AddSync(w))
	return zap.New(zapcore.NewCore(NewEncoder(), ws, lvl), zap.AddCaller(), zap.ErrorOutput(ws)), nil
}

// ParseLevel parses a level name, accepting Cloud Logging's "warning" as
// well as zap's names. The empty string is info.
func ParseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("logging: unknown level %q (want debug, info, warning or error)", s)
}

// NewEncoder returns the Cloud Logging JSON encoder with redaction, for
// callers that assemble their own zapcore.Core (a tee, a sampler).
func NewEncoder() zapcore.Encoder {
	cfg := zapcore.EncoderConfig{
		TimeKey:        "time",
		LevelKey:       "severity",
		NameKey:        "logger",
		MessageKey:     "message",
		StacktraceKey:  "stack_trace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    encodeSeverity,
		EncodeTime:     encodeTime,
		EncodeDuration: zapcore.StringDurationEncoder,
		// The caller is written as a sourceLocation object by
		// cloudEncoder, not as zap's "file:line" string.
	}
	return cloudEncoder{zapcore.NewJSONEncoder(cfg)}
}

// Severity returns the Cloud Logging severity for a zap level.
func Severity(l zapcore.Level) string {
	switch l {
	case zapcore.DebugLevel:
		return "DEBUG"
	case zapcore.InfoLevel:
		return "INFO"
	case zapcore.WarnLevel:
		return "WARNING"
	case zapcore.ErrorLevel:
		return "ERROR"
	case zapcore.DPanicLevel:
		return "CRITICAL"
	case zapcore.PanicLevel:
		return "ALERT"
	case zapcore.FatalLevel:
		return "EMERGENCY"
	}
	return "DEFAULT"
}

func encodeTime(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(t.UTC().Format(time.RFC3339Nano))
}

func encodeSeverity(l zapcore.Level, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(Severity(l))
}

// cloudEncoder adds the source location and redacts the encoded line. The
// embedded encoder keeps the context fields added by With, so they are
// redacted too.
type cloudEncoder struct {
	zapcore.Encoder
}

func (e cloudEncoder) Clone() zapcore.Encoder { return cloudEncoder{e.Encoder.Clone()} }

func (e cloudEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	if ent.Caller.Defined {
		// Full slice expression: never append into the caller's array.
		fields = append(fields[:len(fields):len(fields)], zap.Object(KeySourceLocation, sourceLocation(ent.Caller)))
	}
	buf, err := e.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return nil, err
	}
	if containsFold(buf.Bytes(), "signature") {
		out := redactBytes(buf.Bytes())
		buf.Reset()
		_, _ = buf.Write(out) // a buffer.Buffer write never fails
	}
	return buf, nil
}

type sourceLocation zapcore.EntryCaller

func (s sourceLocation) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("file", s.File)
	// LogEntrySourceLocation.line is an int64, which proto3 JSON writes as
	// a string.
	enc.AddString("line", strconv.Itoa(s.Line))
	fn := s.Function
	if fn == "" {
		if f := runtime.FuncForPC(s.PC); f != nil {
			fn = f.Name()
		}
	}
	enc.AddString("function", fn)
	return nil
}

var (
	// A signature query parameter or header value in free text (a URL, an
	// error message): the value runs to the next separator, which may be a
	// percent-encoded '&' (%26) when the URL is itself a query value. Other
	// percent escapes belong to the value (V2 signatures are base64).
	reParam = regexp.MustCompile(`(?i)(x-(?:goog|amz)-signature(?:=|%3D|%253D|:\s*)|[?&]signature(?:=|%3D))(?:[^&\s"\\#%,;<>]|%(?:[013-9a-f][0-9a-f]|2[0-57-9a-f]))+`)
	// A JSON key naming a signature, with a string value.
	reKey = regexp.MustCompile(`(?i)("[^"\\]*signature[^"\\]*"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	// The same inside a string that holds escaped JSON.
	reEscapedKey = regexp.MustCompile(`(?i)(\\"[^"\\]*signature[^"\\]*\\"\s*:\s*\\")[^"\\]*`)
)

// Redact returns s with every signature value replaced by REDACTED, by the
// rules the logger applies to each line.
func Redact(s string) string {
	if !containsFold([]byte(s), "signature") {
		return s
	}
	return string(redactBytes([]byte(s)))
}

func redactBytes(b []byte) []byte {
	b = reKey.ReplaceAll(b, []byte(`${1}"`+Redacted+`"`))
	b = reEscapedKey.ReplaceAll(b, []byte(`${1}`+Redacted))
	return reParam.ReplaceAll(b, []byte(`${1}`+Redacted))
}

// containsFold reports whether b contains the lower-case ASCII word w in any
// case; it is the cheap test that spares most lines the regular expressions.
func containsFold(b []byte, w string) bool {
	for i := 0; i+len(w) <= len(b); i++ {
		j := 0
		for j < len(w) && b[i+j]|0x20 == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// Trace returns a field that puts the request's trace into a log entry, so
// Cloud Logging groups the entry under the request. header is the value of
// X-Cloud-Trace-Context ("TRACE_ID/SPAN_ID;o=1", span in decimal) or of a W3C
// traceparent ("00-TRACE_ID-SPAN_ID-FLAGS"). The field is a no-op when
// project is empty or the header cannot be parsed.
func Trace(project, header string) zap.Field {
	t, ok := parseTrace(header)
	if !ok || project == "" {
		return zap.Skip()
	}
	t.project = project
	return zap.Inline(t)
}

// TraceFromHeaders is Trace for an HTTP request's headers: it prefers
// X-Cloud-Trace-Context, which Cloud Run's request log uses, and falls back
// to traceparent.
func TraceFromHeaders(project string, h http.Header) zap.Field {
	if v := h.Get("X-Cloud-Trace-Context"); v != "" {
		if _, ok := parseTrace(v); ok {
			return Trace(project, v)
		}
	}
	return Trace(project, h.Get("Traceparent"))
}

type traceInfo struct {
	project, traceID, spanID string
	sampled, sampledKnown    bool
}

func (t traceInfo) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString(KeyTrace, "projects/"+t.project+"/traces/"+t.traceID)
	if t.spanID != "" {
		enc.AddString(KeySpanID, t.spanID)
	}
	if t.sampledKnown {
		enc.AddBool(KeyTraceSampled, t.sampled)
	}
	return nil
}

func parseTrace(h string) (traceInfo, bool) {
	h = strings.TrimSpace(h)
	if len(h) >= 55 && h[2] == '-' && h[35] == '-' && h[52] == '-' {
		return parseTraceparent(h)
	}
	return parseCloudTrace(h)
}

// parseTraceparent parses a W3C traceparent: version, 32-hex trace ID, 16-hex
// parent (span) ID, 2-hex flags; all-zero IDs and version ff are invalid.
func parseTraceparent(h string) (traceInfo, bool) {
	version, traceID, spanID, flags := h[0:2], h[3:35], h[36:52], h[53:55]
	if !isHex(version) || version == "ff" || (version == "00" && len(h) != 55) ||
		!isHex(traceID) || allZero(traceID) || !isHex(spanID) || allZero(spanID) || !isHex(flags) {
		return traceInfo{}, false
	}
	f, _ := strconv.ParseUint(flags, 16, 8) // checked hex above
	return traceInfo{traceID: traceID, spanID: spanID, sampled: f&1 == 1, sampledKnown: true}, true
}

// parseCloudTrace parses X-Cloud-Trace-Context: TRACE_ID[/SPAN_ID][;o=0|1]
// with a 32-hex trace ID and a decimal span ID, which Cloud Logging wants as
// 16 hex digits.
func parseCloudTrace(h string) (traceInfo, bool) {
	rest, opts, hasOpts := strings.Cut(h, ";")
	traceID, span, hasSpan := strings.Cut(rest, "/")
	traceID = strings.ToLower(traceID)
	if len(traceID) != 32 || !isHex(traceID) || allZero(traceID) {
		return traceInfo{}, false
	}
	t := traceInfo{traceID: traceID}
	if hasSpan && span != "" {
		n, err := strconv.ParseUint(span, 10, 64)
		if err != nil {
			return traceInfo{}, false
		}
		if n != 0 {
			t.spanID = fmt.Sprintf("%016x", n)
		}
	}
	if hasOpts {
		switch strings.TrimSpace(opts) {
		case "o=1":
			t.sampled, t.sampledKnown = true, true
		case "o=0":
			t.sampledKnown = true
		}
	}
	return t, true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

func allZero(s string) bool {
	return strings.Trim(s, "0") == ""
}
