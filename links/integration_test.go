package links

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/linkissuer/linkissuer/worker"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"

	"github.com/linkissuer/linkissuer/internal/pubsubtest"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// upload writes objects through the storage client, so fake-gcs-server
// publishes one OBJECT_FINALIZE per object to the notifications topic.
func (s *stack) upload(names []string) {
	s.t.Helper()
	ctx := context.Background()
	client := s.gcs.Client()
	_, err := client.Bucket(s.bucket).AddNotification(ctx, &storage.Notification{
		TopicProjectID: testProject,
		TopicID:        s.IDs["notifications"],
		PayloadFormat:  storage.JSONPayload,
		EventTypes:     []string{storage.ObjectFinalizeEvent},
	})
	if err != nil {
		s.t.Fatalf("add notification: %v", err)
	}
	for _, name := range names {
		w := client.Bucket(s.bucket).Object(name).NewWriter(ctx)
		w.ContentType = "text/plain"
		if _, err := w.Write([]byte("content of " + name)); err != nil {
			s.t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			s.t.Fatalf("upload %q: %v", name, err)
		}
	}
}

// decodeLinks parses link messages and checks their attributes.
func decodeLinks(t *testing.T, msgs []*pubsub.Message) map[string]schema.Link {
	t.Helper()
	links := map[string]schema.Link{}
	for _, m := range msgs {
		var l schema.Link
		if err := json.Unmarshal(m.Data, &l); err != nil {
			t.Fatalf("link message is not JSON: %v", err)
		}
		if m.Attributes[schema.AttrSchema] != schema.LinkV1 {
			t.Errorf("schema attribute %q", m.Attributes[schema.AttrSchema])
		}
		if got, want := m.Attributes[schema.AttrDedupeKey], l.DedupeKey(); got != want {
			t.Errorf("dedupe_key %q, want %q", got, want)
		}
		for k, v := range m.Attributes {
			if strings.Contains(v, "Signature") {
				t.Errorf("attribute %s carries the URL", k)
			}
		}
		links[l.Object] = l
	}
	return links
}

func TestFinalizeNotificationsBecomeVerifiedLinks(t *testing.T) {
	s := newStack(t)
	s.startWorker(s.handler().Handle, 5*time.Second)
	names := []string{"a.txt", "dir/b c.txt", "unicodé/ü+plus.txt", "tilde~/100%.txt"}
	for i := 0; i < 26; i++ {
		names = append(names, fmt.Sprintf("batch/%03d.txt", i))
	}
	s.upload(names)

	msgs := s.collect("results", len(names), 60*time.Second)
	links := decodeLinks(t, msgs)
	if len(links) != len(names) {
		t.Fatalf("got links for %d objects, want %d", len(links), len(names))
	}
	for _, name := range names {
		l, ok := links[name]
		if !ok {
			t.Errorf("no link for %q", name)
			continue
		}
		p, err := sign.ParseSignedURL(l.URL, l.HTTPMethod, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := p.VerifyRSA(s.key.Public()); err != nil {
			t.Errorf("%s: signature does not verify: %v", name, err)
		}
		if err := p.CheckTime(time.Now()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if l.Generation <= 0 || l.Source.MessageID == "" || l.Source.EventType != "OBJECT_FINALIZE" {
			t.Errorf("%s: incomplete link %+v", name, l)
		}
		// fake-gcs-server serves the object at the signed URL (it does not
		// check signatures; the check above does).
		resp, err := s.gcs.HTTPClient().Get(l.URL)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || body.String() != "content of "+name {
			t.Errorf("%s: GET %d %q", name, resp.StatusCode, body.String())
		}
	}
	if errs := s.collectQuiet("errors", 500*time.Millisecond); len(errs) != 0 {
		t.Errorf("%d unexpected dead letters: %s", len(errs), errs[0].Data)
	}
}

func TestRedeliveredNotificationKeepsDedupeKey(t *testing.T) {
	s := newStack(t)
	s.startWorker(s.handler().Handle, 5*time.Second)
	data := []byte(`{"kind":"storage#object","bucket":"example-media","name":"dup.txt","generation":"1700000000000001","size":"3","contentType":"text/plain"}`)
	attrs := map[string]string{
		"bucketId": "example-media", "objectId": "dup.txt", "objectGeneration": "1700000000000001",
		"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "eventTime": "2026-11-22T10:00:00Z",
	}
	// Pub/Sub redelivers the same notification; a notification config may
	// also publish it twice. Either way consumers see one dedupe_key.
	s.publish(&pubsub.Message{Data: data, Attributes: attrs}, &pubsub.Message{Data: data, Attributes: attrs})
	msgs := s.collect("results", 2, 30*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("got %d link messages, want 2", len(msgs))
	}
	k1, k2 := msgs[0].Attributes[schema.AttrDedupeKey], msgs[1].Attributes[schema.AttrDedupeKey]
	if k1 != k2 || k1 != "example-media/dup.txt#1700000000000001:GET" {
		t.Errorf("dedupe keys %q and %q", k1, k2)
	}
}

// corpusCase mirrors schema/testdata/README.md (a test-only format).
type corpusCase struct {
	file        string
	Description string            `json:"description"`
	Transport   string            `json:"transport"`
	Attributes  map[string]string `json:"attributes"`
	Headers     map[string]string `json:"headers"`
	RawData     *string           `json:"data"`
	DataBase64  *string           `json:"data_base64"`
	DataJSON    json.RawMessage   `json:"data_json"`
	Expect      struct {
		ReasonCode string `json:"reason_code"`
		Field      string `json:"field"`
		Stage      string `json:"stage"`
		Kind       string `json:"kind"`
		Ignore     string `json:"ignore"`
	} `json:"expect"`
	data []byte
}

func loadCorpus(t *testing.T, dir string) []*corpusCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "schema", "testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in schema/testdata/%s: %v", dir, err)
	}
	sort.Strings(files)
	var out []*corpusCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := &corpusCase{file: filepath.Base(f)}
		if err := json.Unmarshal(b, c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch {
		case c.RawData != nil:
			c.data = []byte(*c.RawData)
		case c.DataBase64 != nil:
			if c.data, err = base64.StdEncoding.DecodeString(*c.DataBase64); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		case len(c.DataJSON) > 0:
			c.data = c.DataJSON
		}
		out = append(out, c)
	}
	return out
}

// Every bad-input case lands on the error topic with its reason; good
// messages around them are still issued and the worker stays up.
func TestBadInputCorpusIsDeadLettered(t *testing.T) {
	s := newStack(t)
	s.startWorker(s.handler().Handle, 5*time.Second)
	good := func(i int) *pubsub.Message {
		name := fmt.Sprintf("good/%02d.txt", i)
		gen := fmt.Sprint(1700000000000000 + i)
		return &pubsub.Message{
			Data: []byte(`{"kind":"storage#object","bucket":"example-media","name":"` + name + `","generation":"` + gen + `","size":"1","contentType":"text/plain"}`),
			Attributes: map[string]string{"bucketId": "example-media", "objectId": name, "objectGeneration": gen,
				"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "eventTime": "2026-11-22T10:00:00Z"},
		}
	}
	var msgs []*pubsub.Message
	want := map[string]string{} // original message -> reason code, keyed by the case's file
	nGood := 0
	for _, c := range loadCorpus(t, "bad") {
		if c.Transport == "http" {
			continue // HTTP-only cases (CloudEvents headers) are the push server's
		}
		attrs := map[string]string{}
		for k, v := range c.Attributes {
			attrs[k] = v
		}
		attrs["corpus_file"] = c.file
		want[c.file] = c.Expect.ReasonCode
		msgs = append(msgs, &pubsub.Message{Data: c.data, Attributes: attrs}, good(nGood))
		nGood++
	}
	s.publish(msgs...)

	dead := s.collect("errors", len(want), 60*time.Second)
	got := map[string]string{}
	for _, m := range dead {
		var d schema.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatalf("dead letter is not JSON: %v", err)
		}
		file := d.OriginalAttributes["corpus_file"]
		got[file] = string(d.ReasonCode)
		if d.Reason == "" || d.OriginalMessageID == "" {
			t.Errorf("%s: dead letter lacks reason or message id: %+v", file, d)
		}
		if m.Attributes[schema.AttrReasonCode] != string(d.ReasonCode) {
			t.Errorf("%s: reason_code attribute %q vs data %q", file, m.Attributes[schema.AttrReasonCode], d.ReasonCode)
		}
	}
	for file, code := range want {
		if got[file] != code {
			t.Errorf("%s: reason_code %q, want %q", file, got[file], code)
		}
	}
	links := decodeLinks(t, s.collect("results", nGood, 60*time.Second))
	for i := 0; i < nGood; i++ {
		if _, ok := links[fmt.Sprintf("good/%02d.txt", i)]; !ok {
			t.Errorf("good message %d around the bad ones was not issued", i)
		}
	}
}

// SIGTERM in the middle of a load loses nothing: every message is either
// published-and-acked by the first worker or redelivered to the next one.
func TestShutdownDuringLoadLosesNothing(t *testing.T) {
	// Pub/Sub (and pstest) redelivers a leased message once its ack
	// deadline passes when its nack was lost with the first worker's
	// connection; Google's emulator was seen not to for many minutes, so
	// this test runs on pstest (pubsubtest.NewPstest).
	s := newStackOn(t, pubsubtest.NewPstest(t, testProject, stackTopics...))
	const n = 300
	var msgs []*pubsub.Message
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("load/%04d.bin", i)
		gen := fmt.Sprint(1700000000000000 + i)
		msgs = append(msgs, &pubsub.Message{
			Data: []byte(`{"kind":"storage#object","bucket":"example-media","name":"` + name + `","generation":"` + gen + `","size":"1"}`),
			Attributes: map[string]string{"bucketId": "example-media", "objectId": name, "objectGeneration": gen,
				"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "eventTime": "2026-11-22T10:00:00Z"},
		})
	}
	s.publish(msgs...)

	// A slow handler keeps many messages in flight when the first worker is
	// told to stop (as main does on SIGTERM).
	h := s.handler()
	// Half the messages take 200 ms (they finish within the grace period),
	// half take 30 s (they are cut short and must be nacked and redelivered).
	// The grace period (5 s) leaves time for the nacks to be confirmed on
	// a loaded machine; a nack lost anyway leaves its message to wait out
	// its ack deadline (10 s), after which it is redelivered.
	slow := func(ctx context.Context, m *worker.Message) ([]worker.Output, error) {
		d := 200 * time.Millisecond
		if m.Attributes["objectGeneration"][len(m.Attributes["objectGeneration"])-1]%2 == 1 {
			d = 30 * time.Second
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return h.Handle(ctx, m)
	}
	var firstDone, secondDone atomic.Int64
	counting := func(h worker.Handler, n *atomic.Int64) worker.Handler {
		return func(ctx context.Context, m *worker.Message) ([]worker.Output, error) {
			outs, err := h(ctx, m)
			if err == nil {
				n.Add(1)
			}
			return outs, err
		}
	}
	stopFirst := s.startWorker(counting(slow, &firstDone), 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	stopFirst()
	t.Logf("first worker issued %d before stopping", firstDone.Load())

	s.startWorker(counting(h.Handle, &secondDone), 5*time.Second)
	defer func() { t.Logf("second worker issued %d", secondDone.Load()) }()
	seen := map[string]int{}
	// Messages the first worker cut short were nacked, and Pull returned
	// once Pub/Sub confirmed those nacks (or Grace ended), so they come
	// straight back, or after their ack deadline if a nack was lost. The
	// wait is generous for a loaded machine; nothing may be missing at the
	// end of it.
	start := time.Now()
	s.collectUntil("results", 180*time.Second, func(m *pubsub.Message) bool {
		seen[m.Attributes[schema.AttrDedupeKey]]++
		return len(seen) == n
	})
	if len(seen) != n {
		dlq := s.collectQuiet("dlq", 2*time.Second)
		t.Fatalf("%d of %d messages produced a link; %d went to the subscription's dead-letter topic", len(seen), n, len(dlq))
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("collected after %s", time.Since(start))
	t.Logf("all %d issued; %d duplicate deliveries absorbed by dedupe_key", n, dups)
	if errs := s.collectQuiet("errors", 300*time.Millisecond); len(errs) != 0 {
		t.Errorf("%d dead letters during shutdown: %s", len(errs), errs[0].Data)
	}
}
