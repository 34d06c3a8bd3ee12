package worker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/schema"
)

// Fuzz targets for the untrusted inputs the push server reads before the
// router: the Pub/Sub push envelope, the CloudEvent request (through
// schema.CloudEventHTTP) and the POST /v1/links body. Run one with, e.g.:
//
//	go test ./worker -run '^$' -fuzz '^FuzzPushMessage$' -fuzztime 90s

func FuzzPushMessage(f *testing.F) {
	f.Add([]byte(`{"message":{"data":"aGk=","attributes":{"eventType":"OBJECT_FINALIZE"},"messageId":"1","publishTime":"2026-03-01T10:00:00Z"},"subscription":"s","deliveryAttempt":2}`), "")
	f.Add([]byte(`{"message":{"data":"aGk=","message_id":"77","publish_time":"2026-03-01T10:00:00.1Z"}}`), "")
	f.Add([]byte(`{"message":{"attributes":{"k":"\ud800"},"messageId":"1"}}`), "")
	f.Add([]byte(`{"raw":true}`), "555")
	f.Fuzz(func(t *testing.T, body []byte, unwrappedID string) {
		h := http.Header{}
		if unwrappedID != "" {
			h.Set(hdrPushMessageID, unwrappedID)
		}
		m, err := pushMessage(context.Background(), h, body)
		if err != nil {
			var bad *envelopeError
			if !errors.As(err, &bad) || bad.status < 400 || bad.status > 499 {
				t.Fatalf("error %v (%T) is not a 4xx envelope error", err, err)
			}
			return
		}
		if m.ID == "" || m.Attributes == nil && unwrappedID != "" {
			t.Fatalf("message %+v has no ID or attributes", m)
		}
		for k, v := range m.Attributes {
			if unwrappedID == "" && (!utf8.ValidString(k) || !utf8.ValidString(v)) {
				t.Fatalf("attribute %q=%q is not valid UTF-8", k, v)
			}
		}
	})
}

func FuzzEventMessage(f *testing.F) {
	f.Add("application/json", "objects/a/b.txt", []byte(`{"kind":"storage#object","name":"a/b.txt","bucket":"media","generation":"1"}`))
	f.Add(schema.CloudEventsContentType, "", []byte(`{"specversion":"1.0","id":"1","type":"`+schema.CloudEventFinalized+`","source":"//storage.googleapis.com/projects/_/buckets/media","subject":"objects/a","time":"2026-03-01T10:00:00Z","data":{"name":"a","bucket":"media","generation":"1"}}`))
	f.Add(schema.CloudEventsContentType, "", []byte(`{"specversion":"1.0","id":"1","data_base64":"e30="}`))
	f.Add("application/cloudevents-batch+json", "", []byte(`[]`))
	f.Fuzz(func(t *testing.T, contentType, subject string, body []byte) {
		h := http.Header{"Content-Type": {contentType}, "Ce-Id": {"1"}, "Ce-Specversion": {"1.0"}, "Ce-Subject": {subject}}
		m, err := eventMessage(context.Background(), h, body)
		if err != nil {
			var bad *envelopeError
			if !errors.As(err, &bad) || bad.status < 400 || bad.status > 499 {
				t.Fatalf("error %v (%T) is not a 4xx envelope error", err, err)
			}
			return
		}
		if m.ID == "" || m.Attributes["ce-specversion"] == "" {
			t.Fatalf("message %+v is not a CloudEvent", m)
		}
		// Whatever the router's parser makes of it, it must not panic and
		// must refuse with a field error.
		if _, err := schema.ParseCloudEventAttributes(context.Background(), m.Attributes, m.Data); err != nil && !errors.Is(err, schema.ErrInvalid) {
			t.Fatalf("parse error %v is not ErrInvalid", err)
		}
	})
}

func FuzzParseLinkRequest(f *testing.F) {
	f.Add([]byte(`{"bucket":"b","object":"o","generation":7,"method":"GET","expires_in":"15m"}`))
	f.Add([]byte(`{"items":[{"bucket":"b","object":"a"},{"bucket":"b","object":"a\ud800"}]}`))
	f.Add([]byte(`{"bucket":"b","object":"public/../x"}`))
	f.Add([]byte(`{"bucket":"b"} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := parseLinkBody(context.Background(), body)
		if err != nil {
			if !errors.Is(err, schema.ErrInvalid) {
				t.Fatalf("error %v (%T) is not ErrInvalid", err, err)
			}
			return
		}
		for _, r := range append([]LinkRequest{b.LinkRequest}, b.Items...) {
			if r.Caller != (audit.Identity{}) || !utf8.ValidString(r.Object) || !utf8.ValidString(r.Bucket) {
				t.Fatalf("accepted %+v", r)
			}
			if strings.ContainsRune(r.Object, utf8.RuneError) && !strings.Contains(strings.ToLower(string(body)), `\ufffd`) &&
				!strings.Contains(string(body), "\uFFFD") {
				t.Fatalf("accepted object %q with a U+FFFD the body did not hold", r.Object)
			}
		}
	})
}
