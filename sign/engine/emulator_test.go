package engine

// Tests over real HTTP: iam.Signer -> the IAM Credentials emulator on
// 127.0.0.1, with the engine in between.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/iam"
	"github.com/linkissuer/linkissuer/sign/keys"
)

// keylessURLSigner builds IAMSigner -> Engine -> URLSigner against s.
func keylessURLSigner(t *testing.T, s *emulator.Server, delegates []string, o *Options) (*Engine, *sign.URLSigner) {
	t.Helper()
	keyless, err := iam.NewSigner(context.Background(), iam.Options{Email: s.Email(), Delegates: delegates, Endpoint: s.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(keyless, o)
	if err != nil {
		t.Fatal(err)
	}
	u, err := sign.New(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, u
}

// publishedKeys loads the keys s publishes on its x509 endpoint, as a
// verifier would (sign/keys).
func publishedKeys(t *testing.T, s *emulator.Server) *sign.KeySet {
	t.Helper()
	set, err := keys.Source{CertURL: s.URL() + "/service_accounts/v1/metadata/x509/"}.Load(context.Background(), s.Email())
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// verify checks that link is r's URL and that `linkissuer verify` would
// find it valid (sign.Verify) with the published keys.
func verify(t *testing.T, published *sign.KeySet, r sign.Request, link *sign.SignedURL) {
	t.Helper()
	v := sign.Verify(context.Background(), sign.VerifyRequest{URL: link.URL, Method: r.Method, At: r.Time},
		sign.VerifyKeys{RSA: func(context.Context, string) (*sign.KeySet, error) { return published, nil }})
	if v.Verdict != sign.Valid || v.Parsed.Object != r.Bucket+"/"+r.Object {
		t.Errorf("%s: verdict %s (%s) for a URL of %v", r.Object, v.Verdict, v.Detail, v.Parsed)
	}
}

func collect(n int) []sign.Request {
	var out []sign.Request
	for r := range requests(n, 0) {
		out = append(out, r)
	}
	return out
}

func TestKeylessURLsVerifyWithThePublishedKey(t *testing.T) {
	s := iamtest.Start(t, emulator.Options{Latency: 2 * time.Millisecond, Jitter: time.Millisecond})
	delegates := []string{"hop@p.iam.gserviceaccount.com"}
	e, u := keylessURLSigner(t, s, delegates, nil)
	published := publishedKeys(t, s)
	reqs := collect(200)
	links := make([]*sign.SignedURL, len(reqs))
	err := e.SignAll(context.Background(), u, requests(len(reqs), 0), func(i int, link *sign.SignedURL, err error) {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
			return
		}
		links[i] = link
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range links {
		if l != nil {
			verify(t, published, reqs[i], l)
		}
	}
	if got := s.Delegates(); len(got) != 1 || strings.Join(got[0], ",") != "projects/-/serviceAccounts/hop@p.iam.gserviceaccount.com" {
		t.Errorf("delegates that reached IAM: %q", got)
	}
	if st := s.Stats(); st.Signed != 200 {
		t.Errorf("emulator signed %d, want 200", st.Signed)
	}
}

// TestFaultsAreRiddenOut: under each kind of fault, every URL is issued
// or reported with a typed, permanent error, and the faults were met.
func TestFaultsAreRiddenOut(t *testing.T) {
	for _, tc := range []struct {
		name    string
		emu     emulator.Options
		opts    Options
		allOK   bool // every URL must be issued
		faultOK func(emulator.Stats) bool
	}{
		{
			name:    "429 storm",
			emu:     emulator.Options{Quota: 200, Burst: 5, Latency: 2 * time.Millisecond, Seed: 1},
			opts:    Options{MaxAttempts: 20, BaseBackoff: 10 * time.Millisecond, InitialRate: 1000},
			allOK:   true,
			faultOK: func(s emulator.Stats) bool { return s.Throttled > 0 },
		},
		{
			name:    "5xx",
			emu:     emulator.Options{ErrorRate: 0.3, Latency: time.Millisecond, Seed: 2},
			opts:    Options{BaseBackoff: time.Millisecond, Ceiling: 1e5},
			faultOK: func(s emulator.Stats) bool { return s.ServerErr > 0 },
		},
		{
			name:    "transient 403",
			emu:     emulator.Options{DeniedRate: 0.3, Latency: time.Millisecond, Seed: 3},
			opts:    Options{BaseBackoff: time.Millisecond, Ceiling: 1e5},
			faultOK: func(s emulator.Stats) bool { return s.Denied > 0 },
		},
		{
			name: "hangs",
			emu:  emulator.Options{HangRate: 0.1, Latency: time.Millisecond, Seed: 4},
			// A hung call waits out CallTimeout; 2 s is far above a
			// healthy call's time even on a loaded machine (at 200 ms, a
			// busy test machine timed out most healthy calls too).
			opts:    Options{BaseBackoff: time.Millisecond, Ceiling: 1e5, CallTimeout: 2 * time.Second},
			faultOK: func(s emulator.Stats) bool { return s.Hung > 0 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := iamtest.Start(t, tc.emu)
			e, u := keylessURLSigner(t, s, nil, &tc.opts)
			published := publishedKeys(t, s)
			reqs := collect(150)
			emitted, issued := 0, 0
			err := e.SignAll(context.Background(), u, requests(len(reqs), 0), func(i int, link *sign.SignedURL, err error) {
				emitted++
				var g *GiveUpError
				switch {
				case err == nil:
					issued++
					verify(t, published, reqs[i], link)
				case errors.As(err, &g) && !sign.IsRetryable(err):
					if tc.allOK {
						t.Errorf("request %d: %v", i, err)
					}
				default:
					t.Errorf("request %d: untyped or retryable error %v", i, err)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			st, es := e.Stats(), s.Stats()
			t.Logf("issued %d/%d; engine: %d calls, %d retries, %d throttled, %d timeouts; emulator: %+v", issued, emitted, st.Calls, st.Retries, st.Throttled, st.Timeouts, es)
			if emitted != len(reqs) {
				t.Errorf("emitted %d results for %d requests", emitted, len(reqs))
			}
			if !tc.faultOK(es) || st.Retries == 0 {
				t.Errorf("the fault was never met (engine retries %d, emulator %+v)", st.Retries, es)
			}
			// A 30% fault rate over 8 attempts leaves ~0.07% of URLs failing:
			// nearly everything must come through.
			if issued < len(reqs)*95/100 {
				t.Errorf("only %d of %d URLs issued", issued, len(reqs))
			}
		})
	}
}

// TestCancellationStopsInFlightWork: every call hangs (for 5 s at most,
// then the emulator would answer); cancelling must end SignAll long before.
func TestCancellationStopsInFlightWork(t *testing.T) {
	const hang = 5 * time.Second
	s := iamtest.Start(t, emulator.Options{HangRate: 1, HangMax: hang})
	e, u := keylessURLSigner(t, s, nil, &Options{Ceiling: 1e5, CallTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for s.Stats().Hung < 20 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	emitted := 0
	err := e.SignAll(ctx, u, requests(50, 0), func(i int, _ *sign.SignedURL, err error) {
		emitted++
		if !errors.Is(err, context.Canceled) {
			t.Errorf("request %d: %v, want context.Canceled", i, err)
		}
	})
	elapsed := time.Since(start)
	if !errors.Is(err, context.Canceled) && err != nil {
		t.Errorf("SignAll = %v", err)
	}
	if elapsed >= hang {
		t.Errorf("SignAll returned after %v: it waited for the hangs to end", elapsed)
	}
	if emitted != 50 {
		t.Errorf("emitted %d of 50 requests already read", emitted)
	}
	// The server saw every held client leave.
	deadline := time.Now().Add(hang)
	for s.Stats().Canceled < s.Stats().Hung && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := s.Stats(); st.Canceled != st.Hung {
		t.Errorf("emulator: %d hung, %d abandoned by the client", st.Hung, st.Canceled)
	}
}
