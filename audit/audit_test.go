package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/audittest"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

const base = "https://storage.googleapis.com/b/o.txt?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam.gserviceaccount.com%2F20260101%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20260101T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host"

func TestFingerprint(t *testing.T) {
	ref, err := Fingerprint(base + "&X-Goog-Signature=abcd")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		url      string
		wantSame bool
		wantErr  bool
	}{
		{name: "another signature", url: base + "&X-Goog-Signature=ef01", wantSame: true},
		{name: "signature elsewhere in the query", url: strings.Replace(base, "X-Goog-Date", "X-Goog-Signature=99&X-Goog-Date", 1), wantSame: true},
		{name: "AWS4 signature", url: base + "&X-Amz-Signature=abcd", wantSame: true},
		{name: "other object", url: strings.Replace(base, "o.txt", "p.txt", 1) + "&X-Goog-Signature=abcd"},
		{name: "other expiry", url: strings.Replace(base, "900", "901", 1) + "&X-Goog-Signature=abcd"},
		{name: "pinned generation", url: base + "&generation=5&X-Goog-Signature=abcd"},
		{name: "no signature", url: base, wantErr: true},
		{name: "not a URL", url: "%zz?X-Goog-Signature=1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Fingerprint(tc.url)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if (got == ref) != tc.wantSame {
				t.Errorf("fingerprint %s vs %s, want same: %v", got, ref, tc.wantSame)
			}
			if !strings.HasPrefix(got, "sha256:") || len(got) != len("sha256:")+64 {
				t.Errorf("fingerprint %q is not sha256:HEX", got)
			}
		})
	}
}

func TestRecordCarriesNoCredential(t *testing.T) {
	sink := &audittest.Sink{}
	r, err := New(sink, Options{Signer: Signer{Identity: "sa@p.iam.gserviceaccount.com", Kind: sign.KindRSA, KeyID: "kid"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := WithRequester(context.Background(), Requester{Path: PathSync, MessageID: "sync-1",
		Caller: Identity{Email: "caller@p.iam.gserviceaccount.com", Subject: "1122", Issuer: "https://accounts.google.com"}})
	l := Link{
		Request: sign.Request{Method: "GET", Bucket: "b", Object: "o.txt", Time: now,
			Query: []sign.Param{{Name: "response-content-disposition", Value: "attachment"}}},
		Signed:     &sign.SignedURL{URL: base + "&response-content-disposition=attachment&X-Goog-Signature=deadbeefcafe", Method: "GET", Expires: now.Add(15 * time.Minute)},
		Generation: 7,
	}
	if err := r.Record(ctx, l); err != nil {
		t.Fatal(err)
	}
	data, err := onlyRecord(t, r, sink).Data()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"deadbeefcafe", "Signature", "https://storage.googleapis.com"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("record contains %q: %s", secret, data)
		}
	}
	var got schema.AuditRecord
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Caller != "caller@p.iam.gserviceaccount.com" || got.CallerSubject != "1122" || got.CallerIssuer != "https://accounts.google.com" || got.Path != PathSync || got.Generation != 7 || got.KeyID != "kid" ||
		got.SignerKind != "rsa" || len(got.ResponseParams) != 1 || got.SignedHeaders[0] != "host" || got.Outcome != schema.OutcomeIssued {
		t.Errorf("record %s", data)
	}

	// Fail-closed: the error is retryable and names the audit.
	sink.Fail(errors.New("topic gone"))
	closed, _ := New(sink, Options{Signer: Signer{Identity: "x", Kind: sign.KindHMAC}, FailClosed: true})
	err = closed.Record(ctx, l)
	if c := failure.Classify(err); !errors.Is(err, ErrUnavailable) || c.Kind != failure.KindTransient || c.Reason() != "audit_unavailable" {
		t.Errorf("fail-closed error %v (%+v): want ErrUnavailable, transient, audit_unavailable", err, c)
	}
	open, _ := New(sink, Options{Signer: Signer{Identity: "x", Kind: sign.KindHMAC}})
	err = open.Record(ctx, l)
	if ferr := open.Flush(context.Background()); err != nil || ferr != nil || open.Failures() != 1 || open.Dropped() != 0 {
		t.Errorf("fail-open: %v (flush %v), %d failures, %d dropped; want nil and 1, 0", err, ferr, open.Failures(), open.Dropped())
	}
}

// onlyRecord returns the one record sink has once r's records are
// written, or fails t.
func onlyRecord(t *testing.T, r *Recorder, sink *audittest.Sink) *schema.AuditRecord {
	t.Helper()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := sink.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1: %+v", len(recs), recs)
	}
	return recs[0]
}

func testLink(object string) Link {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return Link{
		Request: sign.Request{Method: "GET", Bucket: "b", Object: object, Time: now},
		Signed:  &sign.SignedURL{URL: strings.Replace(base, "o.txt", object, 1) + "&X-Goog-Signature=00", Method: "GET", Expires: now.Add(time.Hour)},
	}
}

// Fail-open: Record does not wait for the sink; QueueSize records are
// written at a time, and those beyond are dropped and counted.
func TestFailOpenQueueIsBounded(t *testing.T) {
	sink := &audittest.Sink{Gate: make(chan struct{})}
	r, err := New(sink, Options{Signer: Signer{Identity: "x", Kind: sign.KindHMAC}, QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	for _, o := range []string{"a", "b", "c"} {
		if err := r.Record(ctx, testLink(o)); err != nil {
			t.Fatalf("fail-open Record(%s) = %v", o, err)
		}
	}
	// The request is over before its records are written: they are
	// written all the same.
	cancel()
	if r.Queued() != 2 || r.Dropped() != 1 || r.Failures() != 1 || len(sink.Records()) != 0 {
		t.Errorf("queued %d, dropped %d, failures %d, written %d; want 2, 1, 1, 0", r.Queued(), r.Dropped(), r.Failures(), len(sink.Records()))
	}
	close(sink.Gate)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range sink.Records() {
		got = append(got, rec.Object)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b"}) || r.Queued() != 0 || r.Failures() != 1 {
		t.Errorf("written %v, queued %d, failures %d; want [a b], 0, 1", got, r.Queued(), r.Failures())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, f := range families {
		m := f.GetMetric()[0]
		got = append(got, fmt.Sprintf("%s=%g", f.GetName(), m.GetCounter().GetValue()+m.GetGauge().GetValue()))
	}
	want := []string{"linkissuer_audit_records_dropped_total=1", "linkissuer_audit_records_failed_total=1", "linkissuer_audit_records_queued=0"}
	if !slices.Equal(got, want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
}

// Fail-closed Begin: the record is on its way when Begin returns, and wait
// reports whether it arrived; several records overlap.
func TestBeginOverlapsRecords(t *testing.T) {
	sink := &audittest.Sink{Gate: make(chan struct{})}
	r, err := New(sink, Options{Signer: Signer{Identity: "x", Kind: sign.KindHMAC}, FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithRequester(context.Background(), Requester{Path: PathJob, JobID: "j1", Submitter: "alice@example.com"})
	var waits []func(context.Context) error
	for _, o := range []string{"a", "b", "c"} {
		w, err := r.Begin(ctx, testLink(o))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := waits[0](short); !errors.Is(err, ErrUnavailable) || failure.Classify(err).Reason() != "audit_unavailable" {
		t.Errorf("wait on a held record with a cut context = %v, want ErrUnavailable", err)
	}
	close(sink.Gate)
	// The first record is written all the same; waiting again (after the
	// first wait's context ended) sees it.
	for i, w := range waits {
		if err := w(ctx); err != nil {
			t.Errorf("wait %d: %v", i, err)
		}
	}
	recs := sink.Records()
	if len(recs) != 3 {
		t.Fatalf("%d records written, want 3", len(recs))
	}
	for _, rec := range recs {
		if rec.Path != PathJob || rec.JobID != "j1" || rec.Submitter != "alice@example.com" {
			t.Errorf("record %+v: want path job, job j1, submitter alice@example.com", rec)
		}
	}
}

// A transport's verified caller reaches a record whose Requester names
// none, and does not replace one that does.
func TestCallerFromContext(t *testing.T) {
	r, err := New(&audittest.Sink{}, Options{Signer: Signer{Identity: "x", Kind: sign.KindHMAC}})
	if err != nil {
		t.Fatal(err)
	}
	push := Identity{Email: "push@p.iam.gserviceaccount.com", Subject: "1", Issuer: "https://accounts.google.com"}
	api := Identity{Email: "api@p.iam.gserviceaccount.com", Subject: "2", Issuer: "accounts.google.com"}
	tests := []struct {
		name string
		ctx  context.Context
		want Identity
	}{
		{name: "event pushed", ctx: WithRequester(WithCaller(context.Background(), push), Requester{Path: PathEvent, MessageID: "1"}), want: push},
		{name: "requester names the caller", ctx: WithRequester(WithCaller(context.Background(), push), Requester{Path: PathSync, Caller: api}), want: api},
		{name: "pulled", ctx: WithRequester(context.Background(), Requester{Path: PathEvent}), want: Identity{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := r.Build(tc.ctx, testLink("o"))
			if err != nil {
				t.Fatal(err)
			}
			if got := (Identity{Email: rec.Caller, Subject: rec.CallerSubject, Issuer: rec.CallerIssuer}); got != tc.want {
				t.Errorf("caller %+v, want %+v", got, tc.want)
			}
		})
	}
}
