package schema

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

func finalizeAttrs() map[string]string {
	return map[string]string{
		"bucketId":           "example-media",
		"eventTime":          "2023-11-14T22:13:20.123456Z",
		"eventType":          "OBJECT_FINALIZE",
		"notificationConfig": "projects/_/buckets/example-media/notificationConfigs/3",
		"objectGeneration":   "1700000000000000",
		"objectId":           "photos/cat.jpg",
		"payloadFormat":      "JSON_API_V1",
	}
}

const finalizePayload = `{"kind":"storage#object","name":"photos/cat.jpg","bucket":"example-media",` +
	`"generation":"1700000000000000","metageneration":"1","contentType":"image/jpeg","size":"48213"}`

func TestParseGCSNotification(t *testing.T) {
	with := func(kv ...string) map[string]string {
		a := finalizeAttrs()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(a, kv[i])
			} else {
				a[kv[i]] = kv[i+1]
			}
		}
		return a
	}
	tests := []struct {
		name  string
		attrs map[string]string
		data  string
		want  ObjectEvent // compared field by field below, Payload excepted
		code  ReasonCode
		field string
	}{
		{
			name:  "finalize",
			attrs: finalizeAttrs(),
			data:  finalizePayload,
			want: ObjectEvent{Origin: OriginGCSNotification, Type: ObjectFinalize, Bucket: "example-media", Object: "photos/cat.jpg",
				Generation: 1700000000000000, Metageneration: 1, Size: 48213, ContentType: "image/jpeg",
				EventTime:          time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC),
				NotificationConfig: "projects/_/buckets/example-media/notificationConfigs/3"},
		},
		{
			// fake-gcs-server: no notificationConfig, eventTime with an
			// offset and no fraction, id without generation, no
			// metageneration.
			name:  "fake-gcs-server shape",
			attrs: with("notificationConfig", "-", "eventTime", "2024-01-02T03:04:05+01:00"),
			data:  `{"kind":"storage#object","id":"example-media/photos/cat.jpg","name":"photos/cat.jpg","bucket":"example-media","generation":"1700000000000000","contentType":"image/jpeg","storageClass":"STANDARD","size":"0"}`,
			want: ObjectEvent{Origin: OriginGCSNotification, Type: ObjectFinalize, Bucket: "example-media", Object: "photos/cat.jpg",
				Generation: 1700000000000000, Size: 0, ContentType: "image/jpeg",
				EventTime: time.Date(2024, 1, 2, 2, 4, 5, 0, time.UTC)},
		},
		{
			name:  "NONE has unknown size",
			attrs: with("payloadFormat", "NONE"),
			want: ObjectEvent{Origin: OriginGCSNotification, Type: ObjectFinalize, Bucket: "example-media", Object: "photos/cat.jpg",
				Generation: 1700000000000000, Size: -1,
				EventTime:          time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC),
				NotificationConfig: "projects/_/buckets/example-media/notificationConfigs/3"},
		},
		{
			name:  "generation as a JSON number is accepted",
			attrs: finalizeAttrs(),
			data:  `{"name":"photos/cat.jpg","bucket":"example-media","generation":1700000000000000,"size":12}`,
			want: ObjectEvent{Origin: OriginGCSNotification, Type: ObjectFinalize, Bucket: "example-media", Object: "photos/cat.jpg",
				Generation: 1700000000000000, Size: 12,
				EventTime:          time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC),
				NotificationConfig: "projects/_/buckets/example-media/notificationConfigs/3"},
		},
		{
			name:  "overwrite generations are parsed",
			attrs: with("eventType", "OBJECT_DELETE", "overwrittenByGeneration", "1700000000000001", "payloadFormat", "NONE"),
			want: ObjectEvent{Origin: OriginGCSNotification, Type: ObjectDelete, Bucket: "example-media", Object: "photos/cat.jpg",
				Generation: 1700000000000000, Size: -1, OverwrittenByGeneration: 1700000000000001,
				EventTime:          time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC),
				NotificationConfig: "projects/_/buckets/example-media/notificationConfigs/3"},
		},
		{name: "bad eventTime", attrs: with("eventTime", "yesterday"), data: finalizePayload, code: CodeInvalidField, field: "attributes.eventTime"},
		{name: "zero generation", attrs: with("objectGeneration", "0"), data: finalizePayload, code: CodeInvalidField, field: "attributes.objectGeneration"},
		{name: "bad overwroteGeneration", attrs: with("overwroteGeneration", "x"), data: finalizePayload, code: CodeInvalidField, field: "attributes.overwroteGeneration"},
		{name: "empty objectId", attrs: with("objectId", ""), data: finalizePayload, code: CodeMissingAttribute, field: "attributes.objectId"},
		{name: "object named ..", attrs: with("objectId", ".."), data: finalizePayload, code: CodeInvalidObjectName, field: "attributes.objectId"},
		{name: "wrong kind", attrs: finalizeAttrs(), data: `{"kind":"storage#bucket","name":"photos/cat.jpg","bucket":"example-media","generation":"1700000000000000"}`, code: CodeInvalidField, field: "data.kind"},
		{name: "payload without generation", attrs: finalizeAttrs(), data: `{"name":"photos/cat.jpg","bucket":"example-media"}`, code: CodeMissingField, field: "data.generation"},
		{name: "name mismatch", attrs: finalizeAttrs(), data: strings.Replace(finalizePayload, `"photos/cat.jpg"`, `"photos/dog.jpg"`, 1), code: CodeAttributeMismatch, field: "data.name"},
		{name: "negative size", attrs: finalizeAttrs(), data: strings.Replace(finalizePayload, `"48213"`, `"-1"`, 1), code: CodeInvalidField, field: "data.size"},
		{name: "trailing garbage", attrs: finalizeAttrs(), data: finalizePayload + `{}`, code: CodeInvalidJSON, field: "data"},
		{name: "null payload", attrs: finalizeAttrs(), data: `null`, code: CodeInvalidField, field: "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseGCSNotification(context.Background(), tt.attrs, []byte(tt.data))
			if tt.code != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Code != tt.code || fe.Field != tt.field {
					t.Fatalf("err = %v, want %s on %s", err, tt.code, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := *ev
			if (got.Payload != nil) != (tt.data != "") {
				t.Errorf("Payload = %v, want one exactly when there is data", got.Payload)
			}
			got.Payload = nil
			if !got.EventTime.Equal(tt.want.EventTime) {
				t.Errorf("EventTime = %v, want %v", got.EventTime, tt.want.EventTime)
			}
			got.EventTime = tt.want.EventTime
			if got != tt.want {
				t.Errorf("event =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParseGCSNotificationTooLarge(t *testing.T) {
	_, err := ParseGCSNotification(context.Background(), finalizeAttrs(), make([]byte, MaxMessageBytes+1))
	if CodeOf(err) != CodeTooLarge {
		t.Fatalf("err = %v, want too_large", err)
	}
}

func TestIgnore(t *testing.T) {
	tests := []struct {
		typ           EventType
		overwrittenBy int64
		overwrote     int64
		want          IgnoreReason
	}{
		{typ: ObjectFinalize},
		{typ: ObjectFinalize, overwrote: 5},
		{typ: ObjectDelete, overwrittenBy: 6, want: IgnoreOverwritten},
		{typ: ObjectArchive, overwrittenBy: 6, want: IgnoreOverwritten},
		{typ: ObjectDelete, want: IgnoreDeleted},
		{typ: ObjectArchive, want: IgnoreArchived},
		{typ: ObjectMetadataUpdate, want: IgnoreMetadataUpdate},
	}
	for _, tt := range tests {
		ev := &ObjectEvent{Type: tt.typ, OverwrittenByGeneration: tt.overwrittenBy, OverwroteGeneration: tt.overwrote}
		got, ignore := ev.Ignore()
		if got != tt.want || ignore != (tt.want != "") {
			t.Errorf("%s overwrittenBy=%d: Ignore() = %q, %v; want %q", tt.typ, tt.overwrittenBy, got, ignore, tt.want)
		}
	}
}

func TestObjectNames(t *testing.T) {
	tests := []struct {
		name         string
		basic, strct ReasonCode // "" = accepted
	}{
		{name: "photos/cat.jpg"},
		{name: "unicode/café ☕.txt"},
		{name: "tab\there", strct: CodeInvalidObjectName},
		{name: "nul\x00", strct: CodeInvalidObjectName},
		{name: "esc\x1b[31m", strct: CodeInvalidObjectName},
		{name: "del\x7f", strct: CodeInvalidObjectName},
		{name: "c1\u0085", strct: CodeInvalidObjectName},
		{name: "c1 end\u009f", strct: CodeInvalidObjectName},
		{name: "after c1 \u00a0 is fine"},
		{name: "cr\r", basic: CodeInvalidObjectName, strct: CodeInvalidObjectName},
		{name: "lf\n", basic: CodeInvalidObjectName, strct: CodeInvalidObjectName},
		{name: "bad \xff utf8", basic: CodeInvalidObjectName, strct: CodeInvalidObjectName},
		{name: strings.Repeat("a", 1024)},
		{name: strings.Repeat("a", 1025), basic: CodeInvalidObjectName, strct: CodeInvalidObjectName},
		{name: "", basic: CodeInvalidObjectName, strct: CodeInvalidObjectName},
	}
	for _, tt := range tests {
		if got := CodeOf(ValidateObjectName("object", tt.name)); got != tt.basic {
			t.Errorf("ValidateObjectName(%.30q) = %q, want %q", tt.name, got, tt.basic)
		}
		if got := CodeOf(ValidateObjectNameStrict("object", tt.name)); got != tt.strct {
			t.Errorf("ValidateObjectNameStrict(%.30q) = %q, want %q", tt.name, got, tt.strct)
		}
		// The basic check is sign's own, not a copy of it.
		if (sign.ValidateObject(tt.name) == nil) != (tt.basic == "") {
			t.Errorf("ValidateObjectName and sign.ValidateObject disagree on %.30q", tt.name)
		}
	}
	var ie *sign.InputError
	if err := ValidateObjectName("object", "a\nb"); !errors.As(err, &ie) {
		t.Errorf("ValidateObjectName error %v does not wrap the *sign.InputError", err)
	}
}

func TestInt64String(t *testing.T) {
	tests := []struct {
		in   string
		want Int64String
		ok   bool
	}{
		{in: `"17"`, want: "17", ok: true},
		{in: `"1\u0037"`, want: "17", ok: true},
		{in: `17`, want: "17", ok: true},
		{in: `null`, want: "", ok: true},
		{in: `true`},
		{in: `{}`},
		{in: `[1]`},
	}
	for _, tt := range tests {
		var v struct {
			G Int64String `json:"g"`
		}
		err := json.Unmarshal([]byte(`{"g":`+tt.in+`}`), &v)
		if (err == nil) != tt.ok || v.G != tt.want {
			t.Errorf("decode %s = %q, %v", tt.in, v.G, err)
		}
		var te *json.UnmarshalTypeError
		if err != nil && (!errors.As(err, &te) || te.Field != "g") {
			t.Errorf("decode %s: error %v does not name field g", tt.in, err)
		}
	}
}
