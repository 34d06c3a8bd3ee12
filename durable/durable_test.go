package durable

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/audittest"
	"github.com/linkissuer/linkissuer/internal/idtokentest"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

const (
	testBucket = "durable-media"
	callerSA   = "mailer@test-project.iam.gserviceaccount.com"
	publicURL  = "https://links.example.com"
)

// countingSigner counts the URLs a real signer signs.
type countingSigner struct {
	links.Signer
	n atomic.Int64
}

func (c *countingSigner) Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error) {
	c.n.Add(1)
	return c.Signer.Sign(ctx, r)
}

// revokedList is a fake revocation list by token id.
type revokedList struct {
	mu  sync.Mutex
	ids map[string]bool
	err error // set: the list cannot be trusted
}

func (r *revokedList) Revoked(_ context.Context, id, _, _ string, _ time.Time) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return "", r.err
	}
	if r.ids[id] {
		return "token", nil
	}
	return "", nil
}

// stack is a durable-link server on fake-gcs-server and a real RSA key
// signer, with auditing on, authenticating minting callers with the push
// server's real token checks; idToken is a valid ID token of callerSA.
type stack struct {
	gcs     *fakestorage.Server
	key     *rsa.PrivateKey
	signer  *countingSigner
	sink    *audittest.Sink
	rec     *audit.Recorder
	idToken string
	revoked *revokedList
	srv     *httptest.Server
	durable *Server
	now     atomic.Pointer[time.Time]
	client  *http.Client
}

func testKeys(t testing.TB, ids ...string) *Keys {
	t.Helper()
	var ks []Key
	for _, id := range ids {
		ks = append(ks, Key{ID: id, Secret: []byte(strings.Repeat(id, 32)[:32])})
	}
	k, err := NewKeys(ks)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newStack(t testing.TB, keys *Keys, urls links.Signer, gcs *fakestorage.Server) *stack {
	t.Helper()
	return newStackWith(t, keys, urls, gcs, stackConfig{})
}

// stackConfig varies a stack: the policy (its allow-list is the test
// bucket), and whether auditing fails closed.
type stackConfig struct {
	policy     policy.Config
	failClosed bool
}

func newStackWith(t testing.TB, keys *Keys, urls links.Signer, gcs *fakestorage.Server, sc stackConfig) *stack {
	t.Helper()
	s := &stack{gcs: gcs, sink: &audittest.Sink{}, revoked: &revokedList{ids: map[string]bool{}}}
	s.signer = &countingSigner{Signer: urls}
	pc := sc.policy
	pc.Allow = []string{testBucket}
	p, err := policy.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.New(s.sink, audit.Options{Signer: audit.Signer{Identity: "linkissuer@test-project.iam.gserviceaccount.com", Kind: sign.KindRSA},
		FailClosed: sc.failClosed})
	if err != nil {
		t.Fatal(err)
	}
	s.rec = rec
	ids := idtokentest.New(t)
	s.idToken = ids.Token(t, idtokentest.Claims(publicURL, callerSA))
	issuer := &links.Sync{Links: &links.Issuer{Signer: s.signer, Policy: p, Audit: rec}, Objects: links.GCSObjects{Client: gcs.Client()}}
	router, err := worker.NewRouter(func(context.Context, *worker.Message) ([]worker.Output, error) { return nil, nil }, nopPublisher{},
		worker.RouterOptions{DeadLetter: func(m *worker.Message, _ failure.Code, _ error) (worker.Output, error) { return worker.Output{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	push, err := worker.NewPushServer(router, &worker.PushOptions{AllowedEmails: []string{callerSA},
		Audiences: []string{publicURL}, Validator: ids.Validator(t)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now.Store(&now)
	s.durable, err = New(Options{Keys: keys, Issuer: issuer, Audit: rec, Auth: push, PublicURL: publicURL,
		LinkTTL: 10 * time.Minute, Revoked: s.revoked, Tokens: rec, Now: func() time.Time { return *s.now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(s.durable)
	t.Cleanup(s.srv.Close)
	s.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return s
}

// records returns the audit records with outcome once every record
// begun so far is written (fail-open records are written after the
// answer).
func (s *stack) records(t testing.TB, outcome string) []*schema.AuditRecord {
	t.Helper()
	if err := s.rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s.sink.Outcome(outcome)
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, ...worker.Output) error { return nil }

// newGCS starts fake-gcs-server with the test bucket and one object.
func newGCS(t testing.TB) *fakestorage.Server {
	t.Helper()
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: testBucket})
	w := gcs.Client().Bucket(testBucket).Object("reports/q3.pdf").NewWriter(context.Background())
	w.ContentType = "application/pdf"
	if _, err := io.WriteString(w, "quarterly"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return gcs
}

// keySigner returns a real RSA URL signer for gcs.
func keySigner(t testing.TB, gcs *fakestorage.Server) (links.Signer, *rsa.PrivateKey) {
	t.Helper()
	pk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.NewKeySigner("linkissuer@test-project.iam.gserviceaccount.com", pk)
	if err != nil {
		t.Fatal(err)
	}
	urls, err := sign.New(key, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: gcs.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	return urls, pk
}

// mint posts body with the caller's token and returns the status and
// response.
func (s *stack) mint(t testing.TB, token, body string) (int, MintResponse) {
	t.Helper()
	status, raw := s.mintRaw(t, token, body)
	var m MintResponse
	if status == http.StatusOK {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
	}
	return status, m
}

// mintRaw posts body with the caller's token to the server's handler and
// returns the status and body as they are.
func (s *stack) mintRaw(t testing.TB, token, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, PathMint, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	s.durable.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// click follows a durable URL on the test server (its path only: the
// public host is not this server) and returns the status and Location.
func (s *stack) click(t testing.TB, durableURL string) (int, string) {
	t.Helper()
	path := strings.TrimPrefix(durableURL, "https://links.example.com")
	resp, err := s.client.Get(s.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location")
}

// follow clicks durableURL, which must redirect (302) to a signed URL
// that verifies with pk and downloads; it returns that URL and what it
// downloads.
func (s *stack) follow(t testing.TB, durableURL string, pk *rsa.PrivateKey) (loc, body string) {
	t.Helper()
	status, loc := s.click(t, durableURL)
	if status != http.StatusFound {
		t.Fatalf("click: %d", status)
	}
	p, err := sign.ParseSignedURL(loc, http.MethodGet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyRSA(&pk.PublicKey); err != nil {
		t.Fatalf("redirect target does not verify: %v", err)
	}
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("download: %d %q", resp.StatusCode, b)
	}
	return loc, string(b)
}

func (s *stack) mustMint(t testing.TB, body string) MintResponse {
	t.Helper()
	status, m := s.mint(t, s.idToken, body)
	if status != http.StatusOK {
		t.Fatalf("mint %s: status %d", body, status)
	}
	return m
}

func TestClickRedirectsToAVerifiedDownload(t *testing.T) {
	gcs := newGCS(t)
	urls, pk := keySigner(t, gcs)
	s := newStack(t, testKeys(t, "k1"), urls, gcs)
	m := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"30d"}`)
	if !strings.HasPrefix(m.URL, "https://links.example.com/l/") || len(m.ID) != 32 {
		t.Fatalf("minted %+v", m)
	}
	if got := m.ExpiresAt.Sub(*s.now.Load()); got < 30*24*time.Hour-time.Second || got > 30*24*time.Hour {
		t.Errorf("expires in %s, want 30d", got)
	}
	if _, body := s.follow(t, m.URL, pk); body != "quarterly" {
		t.Fatalf("download: %q", body)
	}
	recs := s.records(t, schema.OutcomeIssued)
	if len(recs) != 1 || recs[0].Path != audit.PathDurable || recs[0].TokenID != m.ID || recs[0].Object != "reports/q3.pdf" {
		t.Fatalf("audit records: %+v", recs)
	}
}

func TestClickSignsResponseParams(t *testing.T) {
	gcs := newGCS(t)
	urls, pk := keySigner(t, gcs)
	s := newStack(t, testKeys(t, "k1"), urls, gcs)
	m := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","response_params":{"response-content-disposition":"attachment; filename=\"q3.pdf\""}}`)
	loc, _ := s.follow(t, m.URL, pk)
	u, _ := url.Parse(loc)
	if got := u.Query().Get("response-content-disposition"); got != `attachment; filename="q3.pdf"` {
		t.Errorf("response-content-disposition = %q", got)
	}
	// A cached click is audited with the same signed parameters.
	s.click(t, m.URL)
	recs := s.records(t, schema.OutcomeIssued)
	if len(recs) != 2 || len(recs[1].ResponseParams) != 1 || recs[1].ResponseParams[0].Name != "response-content-disposition" || recs[0].Fingerprint != recs[1].Fingerprint {
		t.Errorf("audit records: %+v", recs)
	}
}

func TestPolicyResponseParamsWin(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	s := newStackWith(t, testKeys(t, "k1"), urls, gcs, stackConfig{policy: policy.Config{ResponseParams: []sign.Param{{Name: "response-content-disposition", Value: "attachment"}}}})
	m := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","response_params":{"response-content-disposition":"inline","response-content-type":"text/plain"}}`)
	status, loc := s.click(t, m.URL)
	if status != http.StatusFound {
		t.Fatalf("click: %d", status)
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	if got := q["response-content-disposition"]; len(got) != 1 || got[0] != "attachment" {
		t.Errorf("response-content-disposition = %q, want the policy's only", got)
	}
	if got := q.Get("response-content-type"); got != "text/plain" {
		t.Errorf("response-content-type = %q", got)
	}
}

func TestRepeatedClicksCostOneSignaturePerWindow(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	s := newStack(t, testKeys(t, "k1"), urls, gcs)
	m := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"7d"}`)
	const clicks = 20
	var wg sync.WaitGroup
	locs := make([]string, clicks)
	for i := range clicks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, loc := s.click(t, m.URL)
			if status != http.StatusFound {
				t.Errorf("click %d: %d", i, status)
			}
			locs[i] = loc
		}()
	}
	wg.Wait()
	if n := s.signer.n.Load(); n != 1 {
		t.Errorf("%d clicks signed %d URLs, want 1", clicks, n)
	}
	for _, l := range locs {
		if l != locs[0] {
			t.Fatalf("clicks within the window got different URLs")
		}
	}
	if n := len(s.records(t, schema.OutcomeIssued)); n != clicks {
		t.Errorf("%d audit records for %d clicks", n, clicks)
	}
	// Past half the signed URL's lifetime (10m), a click signs again.
	later := s.now.Load().Add(5*time.Minute + time.Second)
	s.now.Store(&later)
	if status, _ := s.click(t, m.URL); status != http.StatusFound {
		t.Fatalf("click after the window: %d", status)
	}
	if n := s.signer.n.Load(); n != 2 {
		t.Errorf("after the window: %d signatures, want 2", n)
	}
}

func TestKeyRotation(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	old := newStack(t, testKeys(t, "old"), urls, gcs)
	m := old.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`)
	tests := []struct {
		name string
		keys []string
		want int
	}{
		{name: "old key listed second", keys: []string{"new", "old"}, want: http.StatusFound},
		{name: "old key removed", keys: []string{"new"}, want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, testKeys(t, tt.keys...), urls, gcs)
			if status, _ := s.click(t, m.URL); status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
		})
	}
	// New tokens are minted under the first key.
	rotated := newStack(t, testKeys(t, "new", "old"), urls, gcs)
	m2 := rotated.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf"}`)
	c, err := testKeys(t, "new").Parse(strings.TrimPrefix(m2.URL, "https://links.example.com/l/"), time.Now())
	if err != nil || c.KeyID != "new" {
		t.Errorf("minted under %q: %v", c.KeyID, err)
	}
}

func TestRefusedClicks(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	s := newStack(t, testKeys(t, "k1"), urls, gcs)
	m := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`)
	tok := strings.TrimPrefix(m.URL, "https://links.example.com/l/")
	missing := s.mustMint(t, `{"bucket":"durable-media","object":"gone.pdf","ttl":"1h"}`)
	denied := s.mustMint(t, `{"bucket":"other-bucket","object":"a.pdf","ttl":"1h"}`)
	revoked := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`)
	s.revoked.ids[revoked.ID] = true
	flipped := []byte(tok)
	flipped[10] ^= 1
	if flipped[10] == '-' || flipped[10] == '_' {
		flipped[10] = 'A'
	}
	tests := []struct {
		name string
		url  string
		want int
	}{
		{name: "tampered", url: "/l/" + string(flipped), want: http.StatusNotFound},
		{name: "truncated", url: "/l/" + tok[:len(tok)-4], want: http.StatusNotFound},
		{name: "garbage", url: "/l/!!!not*a*token", want: http.StatusNotFound},
		{name: "too long", url: "/l/" + strings.Repeat("A", MaxTokenLen+1), want: http.StatusNotFound},
		{name: "revoked", url: revoked.URL, want: http.StatusGone},
		{name: "object missing", url: missing.URL, want: http.StatusNotFound},
		{name: "policy refuses the bucket", url: denied.URL, want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, loc := s.click(t, strings.Replace(tt.url, "https://links.example.com", "", 1))
			if status != tt.want || loc != "" {
				t.Errorf("status %d location %q, want %d", status, loc, tt.want)
			}
		})
	}
	// Expired: the clock passes the durable link's expiry.
	later := s.now.Load().Add(time.Hour + time.Second)
	s.now.Store(&later)
	if status, _ := s.click(t, m.URL); status != http.StatusGone {
		t.Errorf("expired: %d, want 410", status)
	}
	if n := s.signer.n.Load(); n != 0 {
		t.Errorf("refused clicks signed %d URLs", n)
	}
	// The refusals of authenticated tokens are audited; the others (not
	// a token, policy, missing object) are only logged.
	var got []string
	for _, r := range s.records(t, schema.OutcomeRefused) {
		if r.Path != audit.PathDurable || !strings.HasPrefix(r.Fingerprint, "sha256:") {
			t.Errorf("refusal record %+v", r)
		}
		got = append(got, r.TokenID+" "+r.Reason)
	}
	want := []string{revoked.ID + " revoked: token", m.ID + " expired"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("refusal records %q, want %q", got, want)
	}
}

// While the revocation list cannot be trusted, clicks fail closed: 503
// with Retry-After, no signature, an audited refusal.
func TestClickFailsClosedWithoutRevocationList(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	s := newStack(t, testKeys(t, "k1"), urls, gcs)
	m := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`)
	s.revoked.mu.Lock()
	s.revoked.err = errors.New("revocation: list unavailable: not read yet")
	s.revoked.mu.Unlock()
	resp, err := s.client.Get(s.srv.URL + strings.TrimPrefix(m.URL, "https://links.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Location") != "" {
		t.Errorf("status %d, Retry-After %q, Location %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Location"))
	}
	if n := s.signer.n.Load(); n != 0 {
		t.Errorf("signed %d URLs", n)
	}
	if recs := s.records(t, schema.OutcomeRefused); len(recs) != 1 || recs[0].Reason != "revocations_unavailable" || recs[0].TokenID != m.ID {
		t.Errorf("records %+v", recs)
	}
	s.revoked.mu.Lock()
	s.revoked.err = nil
	s.revoked.mu.Unlock()
	if status, _ := s.click(t, m.URL); status != http.StatusFound {
		t.Errorf("with the list back: %d, want 302", status)
	}
}

func TestRevokedAfterCachedClick(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	s := newStack(t, testKeys(t, "k1"), urls, gcs)
	m := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`)
	if status, _ := s.click(t, m.URL); status != http.StatusFound {
		t.Fatalf("first click: %d", status)
	}
	s.revoked.mu.Lock()
	s.revoked.ids[m.ID] = true
	s.revoked.mu.Unlock()
	if status, loc := s.click(t, m.URL); status != http.StatusGone || loc != "" {
		t.Errorf("after revocation: %d %q, want 410 and no redirect", status, loc)
	}
}

func TestMint(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	s := newStack(t, testKeys(t, "k1"), urls, gcs)
	goodToken := s.idToken
	tests := []struct {
		name  string
		token string
		body  string
		want  int
	}{
		{name: "no token", token: "", body: `{"bucket":"durable-media","object":"a"}`, want: http.StatusUnauthorized},
		{name: "bad token", token: "forged", body: `{"bucket":"durable-media","object":"a"}`, want: http.StatusUnauthorized},
		{name: "over the cap", token: goodToken, body: `{"bucket":"durable-media","object":"a","ttl":"91d"}`, want: http.StatusBadRequest},
		{name: "at the cap", token: goodToken, body: `{"bucket":"durable-media","object":"a","ttl":"90d"}`, want: http.StatusOK},
		{name: "bad ttl", token: goodToken, body: `{"bucket":"durable-media","object":"a","ttl":"soon"}`, want: http.StatusBadRequest},
		{name: "put method", token: goodToken, body: `{"bucket":"durable-media","object":"a","method":"PUT"}`, want: http.StatusBadRequest},
		{name: "unknown field", token: goodToken, body: `{"bucket":"durable-media","object":"a","x":1}`, want: http.StatusBadRequest},
		{name: "no object", token: goodToken, body: `{"bucket":"durable-media"}`, want: http.StatusBadRequest},
		{name: "response param not allowed", token: goodToken, body: `{"bucket":"durable-media","object":"a","response_params":{"x-goog-acl":"public"}}`, want: http.StatusBadRequest},
		{name: "response param too long", token: goodToken, body: `{"bucket":"durable-media","object":"a","response_params":{"response-content-type":"` + strings.Repeat("a", MaxParamValue+1) + `"}}`, want: http.StatusBadRequest},
		{name: "response params", token: goodToken, body: `{"bucket":"durable-media","object":"a","response_params":{"response-content-type":"text/plain","response-content-disposition":"attachment"}}`, want: http.StatusOK},
		{name: "negative generation", token: goodToken, body: `{"bucket":"durable-media","object":"a","generation":-1}`, want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, _ := s.mint(t, tt.token, tt.body); status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
		})
	}
}

func TestNewRefusesBadPublicURL(t *testing.T) {
	for _, u := range []string{"", "links.example.com", "https://links.example.com/x", "https://links.example.com?a=b"} {
		_, err := New(Options{Keys: testKeys(t, "k1"), Issuer: worker.LinkIssuerFunc(nil), Auth: nopAuth{}, PublicURL: u})
		if err == nil {
			t.Errorf("public URL %q accepted", u)
		}
	}
}

type nopAuth struct{}

func (nopAuth) Authenticate(http.ResponseWriter, *http.Request) (audit.Identity, bool) {
	return audit.Identity{}, true
}

// outbox is a worker.Publisher that hands what the router publishes to
// the test.
type outbox chan worker.Output

func (o outbox) Publish(_ context.Context, outs ...worker.Output) error {
	for _, out := range outs {
		o <- out
	}
	return nil
}

// eventWorker is the worker's event path in process: a router over a
// links.Issuer that signs with the stack's signer, records its links with
// the stack's recorder and mints durable links with m, logging to log.
func (s *stack) eventWorker(t *testing.T, m *Minter, log *zap.Logger) (*worker.Router, outbox) {
	t.Helper()
	p, err := policy.New(policy.Config{Allow: []string{testBucket}})
	if err != nil {
		t.Fatal(err)
	}
	out := make(outbox, 16)
	h := &links.Issuer{Signer: s.signer, Policy: p, Audit: s.rec, Durable: m}
	r, err := worker.NewRouter(h.Handle, out, worker.RouterOptions{DeadLetter: worker.DeadLetters("test", nil), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return r, out
}

// finalize is the OBJECT_FINALIZE notification of gs://testBucket/object
// at generation gen, delivered as message id.
func finalize(id, object string, gen int64) *worker.Message {
	g := strconv.FormatInt(gen, 10)
	data, _ := json.Marshal(map[string]any{"kind": "storage#object", "bucket": testBucket, "name": object, "generation": g,
		"size": "9", "contentType": "application/pdf"})
	return &worker.Message{ID: id, Subscription: "projects/p/subscriptions/objects", Data: data, Attributes: map[string]string{
		"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": testBucket, "objectId": object,
		"objectGeneration": g, "eventTime": "2026-03-01T10:00:00Z"}}
}

// TestWorkerLinksCarryDurableLinks: the worker's event path with a
// Minter publishes links that carry a durable link to the event's object
// and generation, living the configured lifetime; its token verifies
// with the keys, and the durable-link server built with the same keys
// redirects it to a signed URL of that object and generation, which
// verifies and downloads. Each message gets one "minted" record (path
// event, the subscription and message id, the token id, the token's
// fingerprint); neither the records nor the logs carry the token.
func TestWorkerLinksCarryDurableLinks(t *testing.T) {
	gcs := newGCS(t)
	urls, pk := keySigner(t, gcs)
	keys := testKeys(t, "k1")
	s := newStack(t, keys, urls, gcs)
	attrs, err := gcs.Client().Bucket(testBucket).Object("reports/q3.pdf").Attrs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	m, err := NewMinter(Options{Keys: keys, PublicURL: publicURL + "/", TTL: 30 * 24 * time.Hour,
		Tokens: s.rec, Logger: zap.New(core), Now: func() time.Time { return *s.now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	r, out := s.eventWorker(t, m, zap.New(core))
	ids := []string{"101", "102"}
	byID := map[string]string{} // token id -> token
	now := s.now.Load().Truncate(time.Second)
	for _, id := range ids {
		if d := r.Process(t.Context(), finalize(id, "reports/q3.pdf", attrs.Generation)); !d.Ack || d.Outcome != worker.OutcomeIssued {
			t.Fatalf("message %s: %+v", id, d)
		}
		var l schema.Link
		if err := json.Unmarshal((<-out).Data, &l); err != nil {
			t.Fatal(err)
		}
		if l.Durable == nil || !strings.HasPrefix(l.Durable.URL, publicURL+PathClick) {
			t.Fatalf("link of message %s carries no durable link: %+v", id, l)
		}
		tok := strings.TrimPrefix(l.Durable.URL, publicURL+PathClick)
		c, err := keys.Parse(tok, now)
		if err != nil {
			t.Fatalf("durable token does not verify: %v", err)
		}
		byID[c.ID] = tok
		if c.ID != l.Durable.ID || c.Bucket != testBucket || c.Object != "reports/q3.pdf" || c.Generation != attrs.Generation ||
			c.Method != http.MethodGet || c.ExpiresAt != now.Add(30*24*time.Hour).Unix() || !l.Durable.ExpiresAt.Equal(time.Unix(c.ExpiresAt, 0)) {
			t.Errorf("claims %+v of link %+v", c, l.Durable)
		}
		loc, body := s.follow(t, l.Durable.URL, pk)
		if u, _ := url.Parse(loc); body != "quarterly" || u.Path != "/"+testBucket+"/reports/q3.pdf" ||
			u.Query().Get("generation") != strconv.FormatInt(attrs.Generation, 10) {
			t.Errorf("click redirects to %s (%q), want the event's object and generation", u.Path, body)
		}
	}

	minted := s.records(t, schema.OutcomeMinted)
	if len(minted) != len(ids) {
		t.Fatalf("%d minted records, want one per message", len(minted))
	}
	for i, rec := range minted {
		tok := byID[rec.TokenID]
		if tok == "" || rec.Path != audit.PathEvent || rec.Subscription != "projects/p/subscriptions/objects" || rec.MessageID != ids[i] ||
			rec.Fingerprint != audit.TokenFingerprint(tok) || rec.Generation != attrs.Generation || rec.Caller != "" ||
			!rec.ExpiresAt.Equal(now.Add(30*24*time.Hour)) {
			t.Errorf("minted record %+v does not describe the durable link of message %s", rec, ids[i])
		}
	}
	if issued := s.records(t, schema.OutcomeIssued); len(issued) != 2*len(ids) {
		t.Errorf("%d issued records, want the event links and the clicks", len(issued))
	}
	var secrets []string
	for _, tok := range byID {
		secrets = append(secrets, tok)
	}
	s.sink.NoCredential(t, secrets...)
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		for _, tok := range secrets {
			if strings.Contains(line, tok) {
				t.Errorf("log entry carries a durable token: %s", line)
			}
		}
	}
	if logs.FilterMessage("durable link minted").Len() != len(ids) {
		t.Errorf("the log does not say each durable link was minted")
	}
}

// TestWorkerDurableLinkFailsClosed: when a minting cannot be recorded
// (fail-closed), the message is nacked and nothing is published, though
// the link itself was recorded; once the sink is back, the redelivery
// gets its link and its record.
func TestWorkerDurableLinkFailsClosed(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	keys := testKeys(t, "k1")
	s := newStack(t, keys, urls, gcs)
	sink := &audittest.Sink{}
	tokens, err := audit.New(sink, audit.Options{Signer: audit.Signer{Identity: "linkissuer@test-project.iam.gserviceaccount.com", Kind: sign.KindRSA},
		FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMinter(Options{Keys: keys, PublicURL: publicURL, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	r, out := s.eventWorker(t, m, nil)
	sink.Fail(errors.New("audit topic down"))
	d := r.Process(t.Context(), finalize("201", "reports/q3.pdf", 1))
	if d.Ack || !errors.Is(d.Err, audit.ErrUnavailable) || d.Class.Component != failure.Audit || len(out) != 0 {
		t.Fatalf("audit down: %+v, %d outputs; want a nack and nothing published", d, len(out))
	}
	sink.Fail(nil)
	if d := r.Process(t.Context(), finalize("201", "reports/q3.pdf", 1)); !d.Ack || len(out) != 1 {
		t.Fatalf("redelivery: %+v, %d outputs", d, len(out))
	}
	if minted := sink.Outcome(schema.OutcomeMinted); len(minted) != 1 || minted[0].MessageID != "201" {
		t.Errorf("minted records %+v, want the redelivery's", minted)
	}
	if issued := s.records(t, schema.OutcomeIssued); len(issued) != 2 {
		t.Errorf("%d issued records, want both deliveries' links", len(issued))
	}
}

func TestNewMinter(t *testing.T) {
	keys := testKeys(t, "k1")
	tests := []struct {
		name    string
		o       Options
		wantTTL time.Duration
		wantErr string
	}{
		{name: "lifetime defaults to the cap", o: Options{Keys: keys, PublicURL: publicURL, MaxTTL: 30 * 24 * time.Hour}, wantTTL: 30 * 24 * time.Hour},
		{name: "default cap", o: Options{Keys: keys, PublicURL: publicURL}, wantTTL: DefaultMaxTTL},
		{name: "lifetime over the cap", o: Options{Keys: keys, PublicURL: publicURL, TTL: 91 * 24 * time.Hour}, wantErr: "outside 1m..2160h0m0s"},
		{name: "lifetime under a minute", o: Options{Keys: keys, PublicURL: publicURL, TTL: time.Second}, wantErr: "outside 1m"},
		{name: "public URL with a path", o: Options{Keys: keys, PublicURL: publicURL + "/links"}, wantErr: "is not scheme://host"},
		{name: "no keys", o: Options{PublicURL: publicURL}, wantErr: "keys are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMinter(tt.o)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err %v, want %q", err, tt.wantErr)
				}
			case err != nil || m.ttl != tt.wantTTL:
				t.Errorf("NewMinter: %v; want lifetime %s", err, tt.wantTTL)
			}
		})
	}
}

// A durable link is for GET or HEAD only: a link of another method is a
// permanent failure, and so is an object whose token would be too long.
func TestMintForRefuses(t *testing.T) {
	m, err := NewMinter(Options{Keys: testKeys(t, "k1"), PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*schema.Link{
		{Bucket: testBucket, Object: "a.txt", Method: http.MethodPut},
		{Bucket: testBucket, Object: strings.Repeat("&", 1024), Method: http.MethodGet},
	} {
		if _, err := m.MintFor(t.Context(), l); failure.Classify(err).Kind != failure.KindPermanent {
			t.Errorf("%s %.16s: %v, want a permanent failure", l.Method, l.Object, err)
		}
	}
}
