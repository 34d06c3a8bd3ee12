package links

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/worker"
)

func TestPassThroughExtract(t *testing.T) {
	t.Parallel()
	p, err := NewPassThrough([]string{"recipient", "tenant", "recipient"}, []string{"campaign"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name              string
		pass              *PassThrough
		metadata, attrs   map[string]string
		wantMeta, wantAtt map[string]string
		wantCode          failure.Code
	}{
		{name: "nil allow-list copies nothing", pass: nil, metadata: map[string]string{"recipient": "a@example.com"}},
		{name: "only listed keys", pass: p,
			metadata: map[string]string{"recipient": "a@example.com", "secret": "s"}, attrs: map[string]string{"campaign": "c", "eventType": "OBJECT_FINALIZE"},
			wantMeta: map[string]string{"recipient": "a@example.com"}, wantAtt: map[string]string{"campaign": "c"}},
		{name: "nothing listed present", pass: p, metadata: map[string]string{"other": "x"}},
		{name: "value at the bound", pass: p, metadata: map[string]string{"tenant": strings.Repeat("v", schema.MaxLinkMetaValue)},
			wantMeta: map[string]string{"tenant": strings.Repeat("v", schema.MaxLinkMetaValue)}},
		{name: "value over the bound", pass: p, metadata: map[string]string{"tenant": strings.Repeat("v", schema.MaxLinkMetaValue+1)},
			wantCode: failure.CodeMetadataTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			meta, attrs, err := tc.pass.Extract(tc.metadata, tc.attrs)
			if tc.wantCode != "" {
				if c := failure.Classify(err); c.Kind != failure.KindPermanent || c.Code != tc.wantCode {
					t.Fatalf("error %v (%+v), want permanent %s", err, c, tc.wantCode)
				}
				return
			}
			if err != nil || !maps.Equal(meta, tc.wantMeta) || !maps.Equal(attrs, tc.wantAtt) {
				t.Errorf("got %v %v (%v), want %v %v", meta, attrs, err, tc.wantMeta, tc.wantAtt)
			}
		})
	}
}

func TestPassThroughTotalBound(t *testing.T) {
	t.Parallel()
	var keys []string
	metadata := map[string]string{}
	for i := range 9 { // 9 x (4 + 1000) bytes > 8 KiB
		k := fmt.Sprintf("k%03d", i)
		keys = append(keys, k)
		metadata[k] = strings.Repeat("v", 1000)
	}
	p, err := NewPassThrough(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Extract(metadata, nil); schema.CodeOf(err) != schema.CodeMetadataTooLarge {
		t.Errorf("9 values of 1000 bytes: %v, want %s", err, schema.CodeMetadataTooLarge)
	}
	delete(metadata, "k008")
	if m, _, err := p.Extract(metadata, nil); err != nil || len(m) != 8 {
		t.Errorf("8 values of 1000 bytes: %d copied, %v", len(m), err)
	}
}

func TestNewPassThroughRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		meta, attrs []string
	}{
		{name: "empty key", meta: []string{""}},
		{name: "key over 256 bytes", attrs: []string{strings.Repeat("k", schema.MaxLinkMetaKey+1)}},
		{name: "too many keys", meta: strings.Split(strings.Repeat("k,", MaxPassThroughKeys)+"k", ",")},
	}
	for _, tc := range tests {
		if _, err := NewPassThrough(tc.meta, tc.attrs); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if p, err := NewPassThrough(nil, nil); p != nil || err != nil {
		t.Errorf("no keys: %v, %v; want nil", p, err)
	}
}

// notificationData is a storage#object payload as GCS sends it.
func notificationData(bucket, name, gen string, metadata map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{"kind": "storage#object", "bucket": bucket, "name": name, "generation": gen, "size": "5",
		"contentType": "text/plain", "metadata": metadata})
	return b
}

func notificationAttrs(bucket, name, gen string, custom map[string]string) map[string]string {
	a := map[string]string{"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": bucket, "objectId": name,
		"objectGeneration": gen, "eventTime": "2026-03-01T10:00:00Z", "notificationConfig": "projects/_/buckets/" + bucket + "/notificationConfigs/1"}
	maps.Copy(a, custom)
	return a
}

// TestMetadataPassThroughOnPubSub: on the Pub/Sub emulator, the allowed
// metadata of an object uploaded to fake-gcs-server (its real notification)
// and the allowed custom attributes of a notification reach the published
// linkissuer.link.v1; metadata over the bound dead-letters the event with
// metadata_too_large, without a link.
func TestMetadataPassThroughOnPubSub(t *testing.T) {
	s := newStack(t)
	h := s.handler()
	var err error
	if h.Pass, err = NewPassThrough([]string{"recipient", "tenant"}, []string{"campaign"}); err != nil {
		t.Fatal(err)
	}
	s.startWorker(h.Handle, 5*time.Second)

	ctx := context.Background()
	s.upload(nil) // the notification config
	w := s.gcs.Client().Bucket(s.bucket).Object("mail/uploaded.txt").NewWriter(ctx)
	w.Metadata = map[string]string{"recipient": "ada@example.com", "tenant": "acme", "internal": "not for downstream"}
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s.publish(
		&pubsub.Message{Data: notificationData(s.bucket, "mail/published.txt", "1700000000000001", map[string]string{"recipient": "bob@example.com"}),
			Attributes: notificationAttrs(s.bucket, "mail/published.txt", "1700000000000001", map[string]string{"campaign": "spring", "team": "not listed"})},
		&pubsub.Message{Data: notificationData(s.bucket, "mail/huge.txt", "1700000000000002", map[string]string{"recipient": strings.Repeat("x", schema.MaxLinkMetaValue+1)}),
			Attributes: notificationAttrs(s.bucket, "mail/huge.txt", "1700000000000002", nil)},
	)

	links := decodeLinks(t, s.collect("results", 2, 60*time.Second))
	want := map[string]struct{ meta, attrs map[string]string }{
		"mail/uploaded.txt":  {meta: map[string]string{"recipient": "ada@example.com", "tenant": "acme"}},
		"mail/published.txt": {meta: map[string]string{"recipient": "bob@example.com"}, attrs: map[string]string{"campaign": "spring"}},
	}
	for name, w := range want {
		l, ok := links[name]
		if !ok {
			t.Errorf("no link for %s", name)
			continue
		}
		if !maps.Equal(l.Metadata, w.meta) || !maps.Equal(l.EventAttributes, w.attrs) {
			t.Errorf("%s: metadata %v, event_attributes %v; want %v, %v", name, l.Metadata, l.EventAttributes, w.meta, w.attrs)
		}
	}
	if _, ok := links["mail/huge.txt"]; ok {
		t.Error("a link was issued for over-bound metadata")
	}
	errs := s.collect("errors", 1, 30*time.Second)
	if len(errs) != 1 || errs[0].Attributes["reason_code"] != string(schema.CodeMetadataTooLarge) {
		var got []map[string]string
		for _, m := range errs {
			got = append(got, m.Attributes)
		}
		t.Fatalf("dead letters %v, want one with reason_code %s", got, schema.CodeMetadataTooLarge)
	}
}

// TestMetadataPassThroughOnPush: the push server runs the same issuance:
// a push envelope carrying a notification with metadata and a custom
// attribute gives a link with both.
func TestMetadataPassThroughOnPush(t *testing.T) {
	t.Parallel()
	h := mediaIssuer(t)
	var err error
	if h.Pass, err = NewPassThrough([]string{"recipient"}, []string{"campaign"}); err != nil {
		t.Fatal(err)
	}
	srv := newPushHarness(t, worker.PushOptions{InsecureSkipAuth: true}, h.Handle)
	body, err := json.Marshal(map[string]any{
		"message": map[string]any{
			"data":       base64.StdEncoding.EncodeToString(notificationData("media", "a.txt", "7", map[string]string{"recipient": "ada@example.com", "other": "x"})),
			"attributes": notificationAttrs("media", "a.txt", "7", map[string]string{"campaign": "spring"}),
			"messageId":  "42",
		},
		"subscription": "projects/p/subscriptions/push",
	})
	if err != nil {
		t.Fatal(err)
	}
	if status, code := srv.post(t, worker.PathPush, nil, body); status != 204 {
		t.Fatalf("push answered %d %s", status, code)
	}
	outs := srv.published()
	if len(outs) != 1 || outs[0].Topic != worker.TopicResults {
		t.Fatalf("published %v, want one link", outs)
	}
	var l schema.Link
	if err := json.Unmarshal(outs[0].Data, &l); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(l.Metadata, map[string]string{"recipient": "ada@example.com"}) || !maps.Equal(l.EventAttributes, map[string]string{"campaign": "spring"}) {
		t.Errorf("metadata %v, event_attributes %v", l.Metadata, l.EventAttributes)
	}
}

// FuzzPassThrough: for any notification payload and attribute value, what
// Extract copies is allowed and within bounds, or the event is refused as
// permanent; the parse and the copy are bounded by the input's size.
func FuzzPassThrough(f *testing.F) {
	f.Add(notificationData("media", "a.txt", "7", map[string]string{"recipient": "ada@example.com"}), "spring")
	f.Add(notificationData("media", "a.txt", "7", map[string]string{"recipient": strings.Repeat("x", 2000)}), "")
	f.Add([]byte(`{"kind":"storage#object","bucket":"media","name":"a.txt","generation":"7","metadata":{"recipient":["nested"]}}`), "x")
	f.Add([]byte(`{"kind":"storage#object","bucket":"media","name":"a.txt","generation":"7","metadata":{"recipient":"\ud800"}}`), "x")
	p, err := NewPassThrough([]string{"recipient", "tenant"}, []string{"campaign"})
	if err != nil {
		f.Fatal(err)
	}
	allowed := map[string]bool{"recipient": true, "tenant": true, "campaign": true}
	f.Fuzz(func(t *testing.T, data []byte, campaign string) {
		ev, err := schema.ParseGCSNotification(context.Background(), notificationAttrs("media", "a.txt", "7", nil), data)
		if err != nil || ev.Payload == nil {
			return
		}
		meta, attrs, err := p.Extract(ev.Payload.Metadata, map[string]string{"campaign": campaign, "other": campaign})
		if err != nil {
			if c := failure.Classify(err); c.Kind != failure.KindPermanent || !errors.Is(err, schema.ErrInvalid) {
				t.Fatalf("error %v classified %+v, want a permanent field error", err, c)
			}
			return
		}
		total := 0
		for _, m := range []map[string]string{meta, attrs} {
			for k, v := range m {
				if !allowed[k] || len(v) > schema.MaxLinkMetaValue {
					t.Fatalf("copied %q (%d bytes)", k, len(v))
				}
				total += len(k) + len(v)
			}
		}
		if total > schema.MaxLinkMetaBytes {
			t.Fatalf("copied %d bytes", total)
		}
	})
}
