package schema

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"
)

const ceData = `{"kind":"storage#object","name":"a/b.txt","bucket":"example-media","generation":"1712345678901234","size":"5","contentType":"text/plain"}`

func ceHeader(kv ...string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("ce-id", "42")
	h.Set("ce-source", "//storage.googleapis.com/projects/_/buckets/example-media")
	h.Set("ce-specversion", "1.0")
	h.Set("ce-type", CloudEventFinalized)
	h.Set("ce-subject", "objects/a/b.txt")
	h.Set("ce-time", "2024-04-05T19:34:38.901234Z")
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "-" {
			h.Del(kv[i])
		} else {
			h.Set(kv[i], kv[i+1])
		}
	}
	return h
}

func structured(data string) string {
	return `{"specversion":"1.0","id":"42","source":"//storage.googleapis.com/projects/_/buckets/example-media",` +
		`"type":"google.cloud.storage.object.v1.finalized","subject":"objects/a/b.txt","time":"2024-04-05T19:34:38Z"` + data + `}`
}

// parseHTTP reads and validates a CloudEvent received over HTTP, as the push
// server does.
func parseHTTP(header http.Header, body []byte) (*ObjectEvent, error) {
	attrs, data, err := CloudEventHTTP(context.Background(), header, body)
	if err != nil {
		return nil, err
	}
	return ParseCloudEventAttributes(context.Background(), attrs, data)
}

func TestParseCloudEvent(t *testing.T) {
	structuredCT := http.Header{"Content-Type": {"application/cloudevents+json"}}
	tests := []struct {
		name     string
		header   http.Header
		body     string
		wantType EventType
		code     ReasonCode
		field    string
	}{
		{name: "binary", header: ceHeader(), body: ceData, wantType: ObjectFinalize},
		{name: "binary without content type", header: ceHeader("Content-Type", "-"), body: ceData, wantType: ObjectFinalize},
		{name: "binary deleted", header: ceHeader("ce-type", CloudEventDeleted), body: ceData, wantType: ObjectDelete},
		{name: "binary archived", header: ceHeader("ce-type", CloudEventArchived), body: ceData, wantType: ObjectArchive},
		{name: "binary metadataUpdated", header: ceHeader("ce-type", CloudEventMetadataUpdated), body: ceData, wantType: ObjectMetadataUpdate},
		{name: "structured", header: structuredCT, body: structured(`,"data":` + ceData), wantType: ObjectFinalize},
		{name: "structured base64", header: structuredCT, body: structured(`,"data_base64":"` + base64.StdEncoding.EncodeToString([]byte(ceData)) + `"`), wantType: ObjectFinalize},
		{name: "structured both data forms", header: structuredCT, body: structured(`,"data":` + ceData + `,"data_base64":"e30="`), code: CodeInvalidField, field: "data"},
		{name: "structured bad base64", header: structuredCT, body: structured(`,"data_base64":"!!"`), code: CodeInvalidField, field: "data_base64"},
		{name: "structured no data", header: structuredCT, body: structured(``), code: CodeInvalidJSON, field: "data"},
		{name: "structured xml data", header: structuredCT, body: structured(`,"datacontenttype":"text/xml","data":` + ceData), code: CodeInvalidField, field: "ce-datacontenttype"},
		{name: "specversion 0.3", header: ceHeader("ce-specversion", "0.3"), body: ceData, code: CodeInvalidField, field: "ce-specversion"},
		{name: "missing time", header: ceHeader("ce-time", "-"), body: ceData, code: CodeMissingAttribute, field: "ce-time"},
		{name: "subject without objects/", header: ceHeader("ce-subject", "a/b.txt"), body: ceData, code: CodeInvalidField, field: "ce-subject"},
		{name: "bad bucket in source", header: ceHeader("ce-source", "//storage.googleapis.com/projects/_/buckets/Bad_Bucket"), body: ceData, code: CodeInvalidBucketName, field: "ce-source"},
		{name: "data for another object", header: ceHeader("ce-subject", "objects/a/c.txt"), body: ceData, code: CodeAttributeMismatch, field: "data.name"},
		{name: "wrong body type", header: ceHeader("Content-Type", "text/plain"), body: ceData, code: CodeInvalidField, field: "ce-datacontenttype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := parseHTTP(tt.header, []byte(tt.body))
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
			if ev.Type != tt.wantType || ev.Origin != OriginCloudEvent || ev.ID != "42" || ev.Bucket != "example-media" ||
				ev.Object != "a/b.txt" || ev.Generation != 1712345678901234 || ev.Size != 5 || ev.ContentType != "text/plain" {
				t.Errorf("event = %+v", ev)
			}
		})
	}
}

func TestParseCloudEventAttributes(t *testing.T) {
	attrs := map[string]string{
		"ce-id": "7", "ce-source": "//storage.googleapis.com/projects/_/buckets/example-media", "ce-specversion": "1.0",
		"ce-type": CloudEventFinalized, "ce-subject": "objects/a/b.txt", "ce-time": "2024-04-05T19:34:38Z",
	}
	in, err := Parse(context.Background(), attrs, []byte(ceData))
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != KindCloudEvent || in.Event.ID != "7" || in.Event.Object != "a/b.txt" {
		t.Errorf("got %+v / %+v", in, in.Event)
	}
	delete(attrs, "ce-subject")
	if _, err := Parse(context.Background(), attrs, []byte(ceData)); CodeOf(err) != CodeMissingAttribute {
		t.Errorf("without ce-subject: err = %v, want missing_attribute", err)
	}
}
