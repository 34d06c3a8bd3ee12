package schema

import (
	"errors"
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

func TestInvalidUTF8Path(t *testing.T) {
	isName := func(p string) bool { return p == "a.name" }
	tests := []struct {
		data     string
		path     string
		wantName bool
	}{
		{data: "{\"x\":\"\xff\"}", path: "x"},
		{data: "{\"a\":{\"id\":\"\xff\",\"name\":\"\xfe\"}}", path: "a.name", wantName: true},
		{data: "{\"a\":[{\"k\":1},{\"k\":\"\xff\"}]}", path: "a.k"},
		{data: "{\"a\":{\"b\":[1]},\"c\":\"\xff\"}", path: "c"},
		{data: "{\"\xff\":1}", path: "\ufffd"},
		{data: "[\"ok\",\"\xff\"]", path: ""},
	}
	for _, tt := range tests {
		path, name := invalidUTF8Path([]byte(tt.data), isName)
		if path != tt.path || name != tt.wantName {
			t.Errorf("invalidUTF8Path(%q) = %q, %v; want %q, %v", tt.data, path, name, tt.path, tt.wantName)
		}
	}
}
