package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const testSig = "3a1f6c0e9d5b7a2c4e8f0b1d3c5e7a9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c"

func TestRedactSignatures(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "goog query", in: "https://storage.googleapis.com/b/o?X-Goog-Date=1&X-Goog-Signature=" + testSig + "&x=1",
			want: "https://storage.googleapis.com/b/o?X-Goog-Date=1&X-Goog-Signature=REDACTED&x=1"},
		{name: "amz query, odd case, at the end", in: "https://s3/b/o?x-amz-SIGNATURE=" + testSig, want: "https://s3/b/o?x-amz-SIGNATURE=REDACTED"},
		{name: "percent-encoded inside another URL", in: "next=https%3A%2F%2Fs%2Fo%3FX-Goog-Signature%3D" + testSig + "%26a%3D1",
			want: "next=https%3A%2F%2Fs%2Fo%3FX-Goog-Signature%3DREDACTED%26a%3D1"},
		{name: "JSON-escaped separator", in: `"u":"https://s/o?a=1\u0026X-Goog-Signature\u003d` + testSig + `\u0026b=2"`,
			want: `"u":"https://s/o?a=1\u0026X-Goog-Signature\u003dREDACTED\u0026b=2"`},
		{name: "JSON field", in: `{"fields":{"x-goog-signature" : "` + testSig + `"}}`, want: `{"fields":{"x-goog-signature" : "REDACTED"}}`},
		{name: "two in a row", in: "X-Amz-Signature=" + testSig + " X-Goog-Signature=" + testSig, want: "X-Amz-Signature=REDACTED X-Goog-Signature=REDACTED"},
		{name: "name without value", in: "the X-Goog-Signature parameter", want: "the X-Goog-Signature parameter"},
		{name: "too short to be a signature", in: "X-Goog-Signature=abc", want: "X-Goog-Signature=abc"},
		{name: "nothing", in: "plain", want: "plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(RedactSignatures([]byte(tc.in))); got != tc.want {
				t.Errorf("RedactSignatures(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestDeadLetterCarriesNoSignature: a link.v1 message fed back into the
// worker, and a job message with signed URLs in it, are dead-lettered
// without any signature, in the data, the attributes or the reason.
func TestDeadLetterCarriesNoSignature(t *testing.T) {
	url := "https://storage.googleapis.com/media/a.jpg?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam.gserviceaccount.com%2F20260301%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20260301T100000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=" + testSig
	link, err := json.Marshal(map[string]any{"url": url, "bucket": "media", "object": "a.jpg"}) // & is written \u0026
	if err != nil {
		t.Fatal(err)
	}
	job := []byte(`{"job_id":"j1","source":{"bucket":"media","objects":[{"name":"https://s3.example/b/o?X-Amz-Credential=k&x-amz-signature=` + testSig + `"}]},` +
		`"method":"GET","expires_in":"1h","output":{"manifest":{"uri":"gs://m/x.jsonl?X-AMZ-SIGNATURE=` + testSig + `","format":"jsonl"}},"extra":1}`)
	tests := []struct {
		name  string
		attrs map[string]string
		data  []byte
	}{
		{name: "link.v1 fed back", attrs: map[string]string{AttrSchema: LinkV1, "url": url}, data: link},
		{name: "job with signed URLs", attrs: map[string]string{AttrSchema: JobV1}, data: job},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, perr := Parse(context.Background(), tc.attrs, tc.data)
			if perr == nil {
				t.Fatal("parsed; want a refusal to dead-letter")
			}
			err := errors.Join(perr, errors.New("while handling "+url))
			d := NewDeadLetter(Original{MessageID: "1", Attributes: tc.attrs, Data: tc.data}, err, "", "w", time.Unix(0, 0))
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			out, err := d.Data()
			if err != nil {
				t.Fatal(err)
			}
			var back DeadLetter
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			everything := string(out) + string(back.OriginalData) + back.Reason
			for _, v := range back.OriginalAttributes {
				everything += v
			}
			if strings.Contains(everything, testSig) {
				t.Errorf("dead letter carries a signature:\n%s\noriginal data: %s", out, back.OriginalData)
			}
			if !bytes.Contains(back.OriginalData, []byte(Redacted)) || back.OriginalSize != len(tc.data) {
				t.Errorf("original data %s (size %d), want it kept with the signature redacted", back.OriginalData, back.OriginalSize)
			}
			if tc.attrs["url"] != "" && !strings.Contains(tc.attrs["url"], testSig) {
				t.Error("the caller's attributes were modified")
			}
		})
	}
}
