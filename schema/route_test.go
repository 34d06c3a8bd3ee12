package schema

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRoute(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]string
		data  []byte
		want  Kind
		code  ReasonCode
	}{
		{name: "job", attrs: map[string]string{"schema": JobV1}, want: KindJob},
		{name: "gcs by eventType", attrs: map[string]string{"eventType": "OBJECT_FINALIZE"}, want: KindGCSNotification},
		{name: "gcs by payloadFormat alone", attrs: map[string]string{"payloadFormat": "NONE"}, want: KindGCSNotification},
		{name: "cloudevent", attrs: map[string]string{"ce-specversion": "1.0"}, want: KindCloudEvent},
		{name: "schema wins over eventType", attrs: map[string]string{"schema": JobV1, "eventType": "OBJECT_FINALIZE"}, want: KindJob},
		{name: "future job version", attrs: map[string]string{"schema": "linkissuer.job.v2"}, code: CodeUnknownSchema},
		{name: "our link output", attrs: map[string]string{"schema": LinkV1}, code: CodeUnknownSchema},
		{name: "our dead letter", attrs: map[string]string{"schema": DeadLetterV1}, code: CodeUnknownSchema},
		{name: "empty schema", attrs: map[string]string{"schema": ""}, code: CodeUnknownSchema},
		{name: "nothing", attrs: nil, code: CodeMissingAttribute},
		{name: "unrelated attributes", attrs: map[string]string{"foo": "bar"}, code: CodeMissingAttribute},
		{name: "too large", attrs: map[string]string{"schema": JobV1}, data: make([]byte, MaxMessageBytes+1), code: CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Route(tt.attrs, tt.data)
			if tt.code != "" {
				if CodeOf(err) != tt.code || !errors.Is(err, ErrInvalid) || got != KindUnknown {
					t.Fatalf("Route = %v, %v; want %s", got, err, tt.code)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Route = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestFieldError(t *testing.T) {
	cause := errors.New("cause")
	err := error(&FieldError{Field: "f", Reason: "bad", Code: CodeInvalidField, Err: cause})
	wrapped := errors.Join(errors.New("context"), err)
	if !errors.Is(wrapped, ErrInvalid) || !errors.Is(wrapped, cause) {
		t.Error("wrapped FieldError must match ErrInvalid and its cause")
	}
	var fe *FieldError
	if !errors.As(wrapped, &fe) || fe.Field != "f" {
		t.Error("errors.As must find the FieldError")
	}
	if got := err.Error(); got != "invalid message: f: bad (invalid_field)" {
		t.Errorf("Error() = %q", got)
	}
	if CodeOf(nil) != "" || CodeOf(errors.New("x")) != "" {
		t.Error("CodeOf of nil or a foreign error must be empty")
	}
}

func TestScanJSONBadStrings(t *testing.T) {
	names := []string{"a.name"}
	tests := []struct {
		name  string
		data  string
		field string
		code  ReasonCode
	}{
		{name: "invalid UTF-8 value", data: "{\"x\":\"\xff\"}", field: "x", code: CodeInvalidJSON},
		{name: "name path preferred", data: "{\"a\":{\"id\":\"\xff\",\"name\":\"\xfe\"}}", field: "a.name", code: CodeInvalidObjectName},
		{name: "array indices left out", data: "{\"a\":[{\"k\":1},{\"k\":\"\xff\"}]}", field: "a.k", code: CodeInvalidJSON},
		{name: "after a closed object", data: "{\"a\":{\"b\":[1]},\"c\":\"\xff\"}", field: "c", code: CodeInvalidJSON},
		{name: "invalid key", data: "{\"\xff\":1}", field: "\ufffd", code: CodeInvalidJSON},
		{name: "top-level array", data: "[\"ok\",\"\xff\"]", field: "data", code: CodeInvalidJSON},
		{name: "lone high surrogate", data: `{"a":{"name":"x\ud800y"}}`, field: "a.name", code: CodeInvalidObjectName},
		{name: "lone high surrogate at the end", data: `{"a":{"name":"x\uD800"}}`, field: "a.name", code: CodeInvalidObjectName},
		{name: "lone low surrogate", data: `{"b":"\udc00"}`, field: "b", code: CodeInvalidJSON},
		{name: "two high surrogates", data: `{"b":"\ud800\ud800\udc00"}`, field: "b", code: CodeInvalidJSON},
		{name: "escaped key on a name path", data: `{"a":{"n\u0061me":"\ud800"}}`, field: "a.name", code: CodeInvalidObjectName},
		{name: "too deep", data: strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1), field: "data", code: CodeInvalidJSON},
		{name: "surrogate pair", data: `{"a":{"name":"\ud83d\ude00"}}`},
		{name: "escaped backslash before u", data: `{"a":"\\ud800"}`},
		{name: "deep enough", data: strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth)},
		{name: "syntax error left to the decoder", data: `{"a":"\uZZZZ"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := scanJSON(context.Background(), []byte(tt.data), "", names)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("scanJSON = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || fe.Code != tt.code {
				t.Fatalf("scanJSON = %v, want %s on %q", err, tt.code, tt.field)
			}
		})
	}
}

func TestParseObjectEventRefusesOtherKinds(t *testing.T) {
	t.Parallel()
	for _, kind := range []Kind{KindJob, KindUnknown} {
		_, err := ParseObjectEvent(context.Background(), kind, nil, []byte(`{}`))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Code != CodeUnknownSchema {
			t.Errorf("ParseObjectEvent(%s) = %v, want a FieldError with %s", kind, err, CodeUnknownSchema)
		}
	}
}
