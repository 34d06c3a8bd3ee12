package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for every parser of untrusted input in this package, seeded
// from the testdata corpus (good and bad). Each checks that the parser
// never panics, that every refusal is a *FieldError matching ErrInvalid, and
// that what it accepts holds no text encoding/json would have changed.
// Run one with, for example:
//
//	go test ./schema -run '^$' -fuzz '^FuzzParseGCSNotification$' -fuzztime 90s

// corpusSeeds returns the corpus cases of both directories whose file name
// starts with prefix.
func corpusSeeds(f *testing.F, prefix string) []*corpusCase {
	var out []*corpusCase
	for _, dir := range []string{"good", "bad"} {
		for _, c := range loadCorpus(f, filepath.Join("testdata", dir)) {
			if strings.HasPrefix(c.File, prefix) {
				out = append(out, c)
			}
		}
	}
	if len(out) == 0 {
		f.Fatalf("no corpus files start with %s", prefix)
	}
	return out
}

// checkRefusal fails unless err is nil or a *FieldError matching ErrInvalid.
func checkRefusal(t *testing.T, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Code == "" {
		t.Fatalf("refusal %v (%T) is not a *FieldError with a code", err, err)
	}
	return true
}

// checkName fails if an accepted object name is not text that came from the
// input as it was: valid UTF-8, no U+FFFD unless the input had one.
func checkName(t *testing.T, name string, inputs ...[]byte) {
	t.Helper()
	if !utf8.ValidString(name) || ValidateObjectName("object", name) != nil {
		t.Fatalf("accepted object name %q is not valid", name)
	}
	if strings.ContainsRune(name, utf8.RuneError) {
		for _, in := range inputs {
			if bytes.Contains(in, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(in), []byte(`\ufffd`)) {
				return
			}
		}
		t.Fatalf("accepted object name %q holds U+FFFD the input did not", name)
	}
}

func FuzzParseGCSNotification(f *testing.F) {
	for _, c := range corpusSeeds(f, "gcs_") {
		a := c.Attributes
		f.Add(a[AttrEventType], a[AttrPayloadFormat], a[AttrBucketID], a[AttrObjectID], a[AttrObjectGeneration], a[AttrEventTime], c.Data)
	}
	f.Fuzz(func(t *testing.T, eventType, format, bucket, object, generation, eventTime string, data []byte) {
		attrs := map[string]string{AttrEventType: eventType, AttrPayloadFormat: format, AttrBucketID: bucket,
			AttrObjectID: object, AttrObjectGeneration: generation, AttrEventTime: eventTime}
		ev, err := ParseGCSNotification(context.Background(), attrs, data)
		if checkRefusal(t, err) {
			return
		}
		checkName(t, ev.Object, []byte(object), data)
		if ev.Object != object || ev.Bucket != bucket || ev.Generation <= 0 {
			t.Fatalf("event %+v does not match the attributes %v", ev, attrs)
		}
		if ev.Payload != nil && ev.Payload.Name != ev.Object {
			t.Fatalf("payload name %q, object %q", ev.Payload.Name, ev.Object)
		}
	})
}

func FuzzCloudEvent(f *testing.F) {
	for _, c := range corpusSeeds(f, "c") { // cloudevent_* and ce_*
		h := c.Header()
		if c.Transport != "http" {
			h = http.Header{}
			for k, v := range c.Attributes {
				h.Set(k, v)
			}
		}
		f.Add(h.Get("Content-Type"), h.Get("Ce-Subject"), h.Get("Ce-Source"), c.Data)
	}
	f.Fuzz(func(t *testing.T, contentType, subject, source string, body []byte) {
		h := http.Header{}
		for k, v := range map[string]string{"Content-Type": contentType, "Ce-Id": "1", "Ce-Specversion": "1.0",
			"Ce-Type": CloudEventFinalized, "Ce-Subject": subject, "Ce-Source": source, "Ce-Time": "2026-03-01T10:00:00Z"} {
			if v != "" {
				h.Set(k, v)
			}
		}
		attrs, data, err := CloudEventHTTP(context.Background(), h, body)
		if checkRefusal(t, err) {
			return
		}
		ev, err := ParseCloudEventAttributes(context.Background(), attrs, data)
		if checkRefusal(t, err) {
			return
		}
		checkName(t, ev.Object, []byte(subject), body)
		if "objects/"+ev.Object != attrs["ce-subject"] || ev.Payload == nil || ev.Payload.Name != ev.Object {
			t.Fatalf("event %+v does not match its subject %q", ev, attrs["ce-subject"])
		}
	})
}

func FuzzParseJob(f *testing.F) {
	for _, c := range corpusSeeds(f, "job_") {
		f.Add(c.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := ParseJob(context.Background(), data)
		if checkRefusal(t, err) {
			return
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("accepted job does not validate: %v", err)
		}
		for _, o := range j.Source.Objects {
			checkName(t, o.Name, data)
		}
		if j.Source.Prefix != "" {
			checkName(t, j.Source.Prefix, data)
		}
		again, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseJob(context.Background(), again); err != nil {
			t.Fatalf("accepted job does not survive a round trip: %v\n%s", err, again)
		}
	})
}

// FuzzScanJSON compares the scan with encoding/json: when the scan accepts
// well-formed JSON, decoding it produces no U+FFFD the input did not hold.
func FuzzScanJSON(f *testing.F) {
	for _, c := range corpusSeeds(f, "") {
		f.Add(c.Data)
	}
	f.Add([]byte(`{"a":"\ud800"}`))
	f.Add([]byte("{\"a\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := scanJSON(context.Background(), data, "", []string{"name"})
		if err != nil {
			checkRefusal(t, err)
			return
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte("\uFFFD")) && !bytes.Contains(data, []byte("\uFFFD")) &&
			!bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`)) {
			t.Fatalf("scan accepted %q, which decodes with U+FFFD", data)
		}
	})
}
