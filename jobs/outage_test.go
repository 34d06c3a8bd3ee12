package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/jobstest"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
	signiam "github.com/linkissuer/linkissuer/sign/iam"
)

// keylessFixture is a keyless signer (the engine over IAM signBlob) on the
// IAM Credentials emulator, behind a switch that answers every signBlob
// with 503 while down is set, and with the emulator's own fault injection
// (o) otherwise.
type keylessFixture struct {
	signer *sign.URLSigner
	emu    *iam.Emulator
	down   atomic.Bool
	calls  atomic.Int64
}

func newKeylessFixture(t *testing.T, f *fixture, o *iam.Options, attempts int) *keylessFixture {
	t.Helper()
	emu, err := iam.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	k := &keylessFixture{emu: emu}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.calls.Add(1)
		if k.down.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":503,"status":"UNAVAILABLE","message":"signBlob is down"}}`))
			return
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	is, err := signiam.NewSigner(context.Background(), signiam.Options{Email: emu.Email(), Endpoint: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(is, &engine.Options{MaxAttempts: attempts, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxInFlight: 16})
	if err != nil {
		t.Fatal(err)
	}
	if k.signer, err = sign.New(eng, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: f.gcs.URL()}}); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSignerOutageNeverFinishesJob: with signBlob down (every call 503,
// the engine giving up after its retries) a job is not announced as done
// with every object failed: each delivery fails as a transient signer
// error, so it is redelivered, and no manifest or errors file appears. When
// signBlob is back, the next delivery signs every object.
func TestSignerOutageNeverFinishesJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedMedia(f)
	k := newKeylessFixture(t, f, nil, 3)
	k.down.Store(true)
	r := f.runner(func(o *Options) { o.Backends = f.backends(k.signer, f.signer) })
	job := manifestJob("outage", "gs://exports/outage.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
	for attempt := 1; attempt <= 3; attempt++ {
		outs, err := r.Handle(context.Background(), jobMessage(t, job))
		if c := failure.Classify(err); c.Kind != failure.KindTransient || c.Reason() != "signer_unavailable" || len(outs) != 0 {
			t.Fatalf("delivery %d with signBlob down: %d outputs, %v (%s, %s); want a redelivery for the signer", attempt, len(outs), err, c.Kind, c.Reason())
		}
		if names := f.names(exportsBucket, ""); len(names) != 0 {
			t.Fatalf("delivery %d with signBlob down left %v", attempt, names)
		}
	}
	if k.calls.Load() == 0 {
		t.Fatal("signBlob was never called")
	}
	k.down.Store(false)
	outs, err := r.Handle(context.Background(), jobMessage(t, job))
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 {
		t.Fatalf("%d outputs, want one completion", len(outs))
	}
	checkDone(t, f, decodeDone(t, outs[0]), job, schema.JobCounts{Listed: 40, Signed: 40}, 1)
	if f.read(exportsBucket, ErrorsObject("outage.jsonl")) != nil {
		t.Error("an errors file after the signer recovered")
	}
}

// TestFlakySignerNeverFailsObjects: with half of the signBlob calls
// answered 5xx by the emulator's fault injection and an engine that gives
// up after 2 attempts (a quarter of its signatures), the job writes no
// error row: an object the engine gave up on is signed again within the
// delivery, and a delivery that still fails is redelivered, until one
// signs every object.
func TestFlakySignerNeverFailsObjects(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	public, _ := seedMedia(f)
	k := newKeylessFixture(t, f, &iam.Options{ErrorRate: 0.5, Seed: 11}, 2)
	var gaveUp atomic.Int64
	watch := signerFunc(func(ctx context.Context, r sign.Request) (*sign.SignedURL, error) {
		s, err := k.signer.Sign(ctx, r)
		if err != nil {
			gaveUp.Add(1)
		}
		return s, err
	})
	r := f.runner(func(o *Options) {
		o.Backends, o.SignAttempts = f.backends(watch, f.signer), 6
	})
	job := manifestJob("flaky", "gs://exports/flaky.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
	redelivered := 0
	for {
		outs, err := r.Handle(context.Background(), jobMessage(t, job))
		if err == nil {
			checkDone(t, f, decodeDone(t, outs[0]), job, schema.JobCounts{Listed: 40, Signed: 40}, 1)
			rows := jobstest.ManifestRows(t, f.read(exportsBucket, "flaky.jsonl"), schema.FormatJSONL)
			seen := map[string]bool{}
			for _, row := range rows {
				p, err := sign.ParseSignedURL(row.URL, "GET", nil)
				if err == nil {
					err = p.VerifyRSA(k.emu.PublicKey())
				}
				if err != nil {
					t.Errorf("%s: %v", row.Object, err)
				}
				seen[row.Object] = true
			}
			if len(rows) != len(public) || len(seen) != len(public) {
				t.Errorf("%d rows for %d objects, want each of the %d once", len(rows), len(seen), len(public))
			}
			break
		}
		if c := failure.Classify(err); c.Kind != failure.KindTransient {
			t.Fatalf("delivery %d: %v (%s), want a redelivery", redelivered+1, err, c.Kind)
		}
		if redelivered++; redelivered > 200 {
			t.Fatal("no delivery succeeded in 200")
		}
	}
	t.Logf("%d deliveries redelivered and %d signatures given up on before one delivery signed all 40 objects", redelivered, gaveUp.Load())
	if gaveUp.Load() == 0 {
		t.Error("the engine never gave up: the fault injection did not reach it")
	}
	if f.read(exportsBucket, ErrorsObject("flaky.jsonl")) != nil {
		t.Error("an errors file: signer failures became error rows")
	}
}

// signerFunc is a URLSigner from a function.
type signerFunc func(ctx context.Context, r sign.Request) (*sign.SignedURL, error)

func (f signerFunc) Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error) {
	return f(ctx, r)
}
