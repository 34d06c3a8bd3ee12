package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/durable"
	"github.com/linkissuer/linkissuer/internal/audittest"
	"github.com/linkissuer/linkissuer/internal/idtokentest"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/revocation"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

func TestRevokeUsage(t *testing.T) {
	gcs := revokeGCS(t)
	vars := map[string]string{"STORAGE_EMULATOR_HOST": gcs.URL()}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "no action", args: []string{"--list", "gs://cfg/r.json"}, code: ExitUsage, want: "name what to revoke"},
		{name: "two actions", args: []string{"--list", "gs://cfg/r.json", "--init", "--show"}, code: ExitUsage, want: "one action at a time, got --init and --show"},
		{name: "no list", args: []string{"--init"}, code: ExitUsage, want: "--list is empty"},
		{name: "list not gs", args: []string{"--list", "cfg/r.json", "--init"}, code: ExitUsage, want: "--list: \"cfg/r.json\" is not gs://BUCKET/OBJECT"},
		{name: "token is a link", args: []string{"--list", "gs://cfg/r.json", "--token", "https://l.example.com/l/eyJ2"}, code: ExitUsage, want: "not the link"},
		{name: "object without name", args: []string{"--list", "gs://cfg/r.json", "--object", "gs://media"}, code: ExitUsage, want: "--object: \"gs://media\" is not gs://BUCKET/OBJECT"},
		{name: "before not a time", args: []string{"--list", "gs://cfg/r.json", "--before", "yesterday"}, code: ExitUsage, want: "not an RFC 3339 time"},
		{name: "before in the future", args: []string{"--list", "gs://cfg/r.json", "--before", future}, code: ExitUsage, want: "is in the future"},
		{name: "stray argument", args: []string{"--list", "gs://cfg/r.json", "abc"}, code: ExitUsage, want: "unexpected argument"},
		{name: "missing list", args: []string{"--list", "gs://cfg/none.json", "--before", "now"}, code: ExitFailure, want: "create it with linkissuer revoke --init --list gs://cfg/none.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, errOut := emulateEnv(vars)
			if code := Revoke(context.Background(), env, tt.args); code != tt.code {
				t.Errorf("exit %d, want %d (%s)", code, tt.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.want)
			}
		})
	}
}

// Each action lands in the list; --show prints it; repeating one is a
// no-op.
func TestRevokeActions(t *testing.T) {
	gcs := revokeGCS(t)
	env, out, errOut := emulateEnv(map[string]string{"STORAGE_EMULATOR_HOST": gcs.URL(), "LINKISSUER_REVOCATIONS": "gs://cfg/r.json"})
	run := func(args ...string) string {
		t.Helper()
		before := len(out.String())
		if code := Revoke(context.Background(), env, args); code != ExitOK {
			t.Fatalf("revoke %v: exit %d: %s", args, code, errOut.String())
		}
		return out.String()[before:]
	}
	if got := run("--init"); !strings.Contains(got, "created an empty revocation list at gs://cfg/r.json") {
		t.Errorf("--init: %q", got)
	}
	if got := run("--init"); !strings.Contains(got, "exists; left as it is") {
		t.Errorf("--init again: %q", got)
	}
	run("--token", "0123456789abcdef0123456789abcdef", "--note", "ticket 7")
	if got := run("--token", "0123456789abcdef0123456789abcdef"); !strings.Contains(got, "already revoked") {
		t.Errorf("repeated --token: %q", got)
	}
	run("--object", "gs://media/a b.pdf")
	run("--prefix", "gs://media/campaigns/")
	run("--prefix", "gs://archive/")
	run("--before", "2026-01-01T00:00:00Z")
	l, err := revocation.Parse([]byte(run("--show")))
	if err != nil {
		t.Fatal(err)
	}
	s := revocation.Compile(l)
	for _, c := range []struct{ bucket, object, want string }{
		{"media", "a b.pdf", revocation.ReasonObject},
		{"media", "campaigns/x.png", revocation.ReasonPrefix},
		{"archive", "anything", revocation.ReasonPrefix},
		{"media", "other.pdf", ""},
	} {
		if got := s.Revoked("ffffffffffffffffffffffffffffffff", c.bucket, c.object, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)); got != c.want {
			t.Errorf("%s/%s: %q, want %q", c.bucket, c.object, got, c.want)
		}
	}
	if l.Len() != 5 || l.Tokens[0].Note != "ticket 7" || !l.Before.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("list %+v", l)
	}
}

func revokeGCS(t testing.TB) *fakestorage.Server {
	t.Helper()
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "cfg"})
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "media"})
	return gcs
}

// replica is one durable-link server with its own revocation poller and
// storage client, as one `serve --durable-links --revocations` process
// builds it.
type replica struct {
	srv   *httptest.Server
	sink  *audittest.Sink
	rec   *audit.Recorder
	token string
}

// refused returns the refused clicks recorded so far, "TOKEN_ID REASON".
func (r *replica) refused(t testing.TB) []string {
	t.Helper()
	if err := r.rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rec := range r.sink.Outcome(schema.OutcomeRefused) {
		out = append(out, rec.TokenID+" "+rec.Reason)
	}
	return out
}

const minterSA = "mailer@test.iam.gserviceaccount.com"

// minters authenticates minting requests as serve does (the push server's
// token checks): ID tokens of minterSA for the public URL, issued by ids.
func minters(t testing.TB, ids *idtokentest.TokenIssuer) *worker.PushServer {
	t.Helper()
	// Only Authenticate is used: no message reaches the router.
	unused := func(context.Context, *worker.Message) ([]worker.Output, error) { return nil, nil }
	router, err := worker.NewRouter(unused, discard{}, worker.RouterOptions{DeadLetter: worker.DeadLetters("test", nil)})
	if err != nil {
		t.Fatal(err)
	}
	push, err := worker.NewPushServer(router, &worker.PushOptions{Audiences: []string{"https://links.example.com"},
		AllowedEmails: []string{minterSA}, Validator: ids.Validator(t)})
	if err != nil {
		t.Fatal(err)
	}
	return push
}

type discard struct{}

func (discard) Publish(context.Context, ...worker.Output) error { return nil }

func newReplica(t testing.TB, ctx context.Context, gcs *fakestorage.Server, pk *rsa.PrivateKey, keys *durable.Keys, interval time.Duration) *replica {
	t.Helper()
	env, _, _ := emulateEnv(map[string]string{"STORAGE_EMULATOR_HOST": gcs.URL()})
	key, err := sign.NewKeySigner("linkissuer@test.iam.gserviceaccount.com", pk)
	if err != nil {
		t.Fatal(err)
	}
	urls, err := sign.New(key, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: gcs.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Config{Allow: []string{"media"}})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{sink: &audittest.Sink{}}
	rec, err := audit.New(r.sink, audit.Options{Signer: audit.Signer{Identity: "linkissuer@test.iam.gserviceaccount.com", Kind: sign.KindRSA}})
	if err != nil {
		t.Fatal(err)
	}
	r.rec = rec
	ids := idtokentest.New(t)
	r.token = ids.Token(t, idtokentest.Claims("https://links.example.com", minterSA))
	storage, err := storageClient(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = storage.Close() })
	d := durableFlags{enabled: true, loaded: keys, publicURL: "https://links.example.com", maxTTL: durable.DefaultMaxTTL,
		linkTTL: durable.DefaultLinkTTL, revocations: "gs://cfg/revocations.json", revInterval: interval, revMaxAge: 10 * interval}
	svc := &app.Service{Links: &links.Issuer{Signer: urls, Policy: pol, Audit: rec}, Storage: storage, Log: zap.NewNop()}
	srv, err := d.server(ctx, env, svc, minters(t, ids))
	if err != nil {
		t.Fatal(err)
	}
	mux := worker.NewOpsMux(d.ready(func() error { return nil }), nil)
	mux.Handle(durable.PathMint, srv)
	mux.Handle(durable.PathClick, srv)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (r *replica) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := noRedirect.Get(r.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location")
}

func (r *replica) mint(t testing.TB, object string) durable.MintResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.srv.URL+durable.PathMint, strings.NewReader(`{"bucket":"media","object":"`+object+`","ttl":"30d"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m durable.MintResponse
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("mint: %d %v", resp.StatusCode, err)
	}
	return m
}

// TestRevokeEveryReplica: two replicas share one revocation list. Before
// the list exists both fail closed (503, not ready); a durable link then
// redirects on both to a URL that verifies and downloads; after
// `linkissuer revoke` both answer 410 Gone within the poll interval plus
// one read, and audit the refusal. The delay is measured per revocation.
func TestRevokeEveryReplica(t *testing.T) {
	// LINKISSUER_REVOKE_RUNS and LINKISSUER_REVOKE_INTERVAL size the
	// measurement in BENCHMARKS.md.
	interval, revocations := 250*time.Millisecond, 3
	if v := os.Getenv("LINKISSUER_REVOKE_RUNS"); v != "" {
		if _, err := fmt.Sscan(v, &revocations); err != nil || revocations < 1 {
			t.Fatalf("LINKISSUER_REVOKE_RUNS=%q", v)
		}
	}
	if v := os.Getenv("LINKISSUER_REVOKE_INTERVAL"); v != "" {
		var err error
		if interval, err = time.ParseDuration(v); err != nil {
			t.Fatalf("LINKISSUER_REVOKE_INTERVAL: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gcs := revokeGCS(t)
	w := gcs.Client().Bucket("media").Object("reports/q3.pdf").NewWriter(ctx)
	if _, err := io.WriteString(w, "quarterly"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := durable.NewKeys([]durable.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	replicas := []*replica{newReplica(t, ctx, gcs, pk, keys, interval), newReplica(t, ctx, gcs, pk, keys, interval)}
	env, _, errOut := emulateEnv(map[string]string{"STORAGE_EMULATOR_HOST": gcs.URL(), "LINKISSUER_REVOCATIONS": "gs://cfg/revocations.json"})

	first := replicas[0].mint(t, "reports/q3.pdf")
	path := strings.TrimPrefix(first.URL, "https://links.example.com")
	// serve audits the minting with the caller its token names.
	if err := replicas[0].rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if recs := replicas[0].sink.Outcome(schema.OutcomeMinted); len(recs) != 1 || recs[0].TokenID != first.ID ||
		recs[0].Caller != minterSA || recs[0].CallerSubject != idtokentest.Subject || recs[0].CallerIssuer != idtokentest.Issuer {
		t.Errorf("minted records %+v, want one for %s by %s", recs, first.ID, minterSA)
	}
	for i, r := range replicas {
		if status, _ := r.get(t, path); status != http.StatusServiceUnavailable {
			t.Errorf("replica %d without a list: %d, want 503", i, status)
		}
		if status, _ := r.get(t, "/readyz"); status != http.StatusServiceUnavailable {
			t.Errorf("replica %d /readyz without a list: %d, want 503", i, status)
		}
	}
	if code := Revoke(ctx, env, []string{"--init"}); code != ExitOK {
		t.Fatalf("revoke --init: %d %s", code, errOut.String())
	}
	for i, r := range replicas {
		waitFor(t, 10*interval, fmt.Sprintf("replica %d ready", i), func() bool { s, _ := r.get(t, "/readyz"); return s == http.StatusOK })
		status, loc := r.get(t, path)
		if status != http.StatusFound {
			t.Fatalf("replica %d click: %d, want 302", i, status)
		}
		p, err := sign.ParseSignedURL(loc, http.MethodGet, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyRSA(&pk.PublicKey); err != nil {
			t.Fatalf("replica %d: redirect target does not verify: %v", i, err)
		}
		resp, err := http.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "quarterly" {
			t.Fatalf("replica %d download: %d %q", i, resp.StatusCode, body)
		}
	}

	// The stated bound: one interval, plus one read of the list.
	bound := interval + interval
	var delays []time.Duration
	for n := range revocations {
		m := first
		if n > 0 {
			m = replicas[n%2].mint(t, "reports/q3.pdf")
		}
		p := strings.TrimPrefix(m.URL, "https://links.example.com")
		for i, r := range replicas {
			if status, _ := r.get(t, p); status != http.StatusFound {
				t.Fatalf("revocation %d: replica %d before: %d", n, i, status)
			}
		}
		// A random phase against the replicas' poll ticks: without it each
		// revocation lands just after the poll that ended the previous one.
		time.Sleep(mathrand.N(interval))
		if code := Revoke(ctx, env, []string{"--token", m.ID}); code != ExitOK {
			t.Fatalf("revoke --token: %d %s", code, errOut.String())
		}
		revoked := time.Now()
		var wg sync.WaitGroup
		got := make([]time.Duration, len(replicas))
		for i, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(revoked) < 20*bound {
					if status, _ := r.get(t, p); status == http.StatusGone {
						got[i] = time.Since(revoked)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				got[i] = -1
			}()
		}
		wg.Wait()
		for i, d := range got {
			if d < 0 || d > bound {
				t.Errorf("revocation %d: replica %d answered 410 after %s, bound %s", n, i, d, bound)
			}
			delays = append(delays, d)
			if refused := replicas[i].refused(t); !slices.Contains(refused, m.ID+" revoked: token") {
				t.Errorf("replica %d: refusal of %s not audited: %q", i, m.ID, refused)
			}
		}
	}
	slices.Sort(delays)
	t.Logf("revocation delay over %d revocations x %d replicas, poll interval %s: p50 %s, max %s (p50/interval %.2f, max/interval %.2f)",
		revocations, len(replicas), interval, delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond),
		float64(delays[len(delays)/2])/float64(interval), float64(delays[len(delays)-1])/float64(interval))
}

func waitFor(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
