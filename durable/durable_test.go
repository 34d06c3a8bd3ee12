package durable

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

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
	status, loc := s.click(t, m.URL)
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
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "quarterly" {
		t.Fatalf("download: %d %q", resp.StatusCode, body)
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
	status, loc := s.click(t, m.URL)
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
