package iam

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/internal/vectors"
)

// testKey is generated once: RSA key generation is the slow part of New.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	e, err := New(nil)
	if err != nil {
		panic(err)
	}
	return e.key
})

func start(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Key == nil {
		o.Key = testKey()
	}
	s, err := Start("127.0.0.1:0", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

type answer struct {
	code int
	body []byte
}

func post(t *testing.T, ctx context.Context, rawURL string, body any) answer {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, b}
}

func signURL(s *Server, email string) string {
	return s.URL() + "/v1/projects/-/serviceAccounts/" + email + ":signBlob"
}

func googleError(t *testing.T, a answer) (code int, status, message string) {
	t.Helper()
	var v struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("error body is not Google's JSON shape: %v: %s", err, a.body)
	}
	return v.Error.Code, v.Error.Status, v.Error.Message
}

func fetchCert(t *testing.T, s *Server, email string) (string, *rsa.PublicKey) {
	t.Helper()
	resp, err := http.Get(s.URL() + "/service_accounts/v1/metadata/x509/" + url.PathEscape(email))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var certs map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&certs); err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 {
		t.Fatalf("want one certificate, got %d", len(certs))
	}
	for kid, p := range certs {
		block, _ := pem.Decode([]byte(p))
		if block == nil || block.Type != "CERTIFICATE" {
			t.Fatalf("not a PEM certificate: %q", p)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return kid, cert.PublicKey.(*rsa.PublicKey)
	}
	panic("unreachable")
}

func TestSignBlobVerifiesWithPublishedKeys(t *testing.T) {
	s := start(t, Options{Seed: 1})
	payload := []byte("GOOG4-RSA-SHA256\n20260101T000000Z\n20260101/auto/storage/goog4_request\nabc")
	a := post(t, context.Background(), signURL(s, s.Email()), map[string]any{
		"payload":   base64.StdEncoding.EncodeToString(payload),
		"delegates": []string{"projects/-/serviceAccounts/d1@p.iam.gserviceaccount.com"},
	})
	if a.code != http.StatusOK {
		t.Fatalf("status %d: %s", a.code, a.body)
	}
	var got struct {
		KeyID      string `json:"keyId"`
		SignedBlob string `json:"signedBlob"`
	}
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(got.SignedBlob)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)

	kid, pub := fetchCert(t, s, s.Email())
	if kid != got.KeyID {
		t.Errorf("x509 endpoint key ID %q, signBlob keyId %q", kid, got.KeyID)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("signature does not verify with the x509 certificate: %v", err)
	}

	resp, err := http.Get(s.URL() + "/service_accounts/v1/metadata/jwk/" + s.Email())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Kid != got.KeyID || set.Keys[0].Kty != "RSA" {
		t.Fatalf("jwk set = %+v", set)
	}
	n, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].E)
	jwkPub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if err := rsa.VerifyPKCS1v15(jwkPub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("signature does not verify with the JWK: %v", err)
	}

	if d := s.Delegates(); len(d) != 1 || len(d[0]) != 1 || d[0][0] != "projects/-/serviceAccounts/d1@p.iam.gserviceaccount.com" {
		t.Errorf("delegates recorded = %q", d)
	}
	if st := s.Stats(); st.Requests != 1 || st.Signed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSignBlobRequestErrors(t *testing.T) {
	s := start(t, Options{Email: "a@p.iam.gserviceaccount.com"})
	good := map[string]any{"payload": base64.StdEncoding.EncodeToString([]byte("x"))}
	for _, tc := range []struct {
		name   string
		url    string
		body   any
		code   int
		status string
	}{
		{"escaped email is accepted", signURL(s, "a%40p.iam.gserviceaccount.com"), good, 200, ""},
		{"URL-safe base64 is accepted", signURL(s, s.Email()), map[string]any{"payload": "-_8="}, 200, ""},
		{"unknown account", signURL(s, "b@p.iam.gserviceaccount.com"), good, 404, "NOT_FOUND"},
		{"project instead of '-'", s.URL() + "/v1/projects/p/serviceAccounts/" + s.Email() + ":signBlob", good, 400, "INVALID_ARGUMENT"},
		{"unknown method", s.URL() + "/v1/projects/-/serviceAccounts/" + s.Email() + ":signJwt", good, 404, "NOT_FOUND"},
		{"missing payload", signURL(s, s.Email()), map[string]any{}, 400, "INVALID_ARGUMENT"},
		{"payload not base64", signURL(s, s.Email()), map[string]any{"payload": "%%%"}, 400, "INVALID_ARGUMENT"},
		{"bare delegate email", signURL(s, s.Email()), map[string]any{"payload": "eA==", "delegates": []string{"d@p.iam.gserviceaccount.com"}}, 400, "INVALID_ARGUMENT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, context.Background(), tc.url, tc.body)
			if a.code != tc.code {
				t.Fatalf("status %d, want %d: %s", a.code, tc.code, a.body)
			}
			if tc.code == 200 {
				return
			}
			code, status, msg := googleError(t, a)
			if code != tc.code || status != tc.status || msg == "" {
				t.Errorf("error = %d %s %q, want %d %s", code, status, msg, tc.code, tc.status)
			}
		})
	}
}

func TestQuotaAnswers429AtOnce(t *testing.T) {
	// A quota of 1/s with a bucket of 3: the first three calls pass, the
	// rest of an immediate burst are throttled (a refill takes a second).
	s := start(t, Options{Quota: 1, Burst: 3, Latency: time.Millisecond})
	body := map[string]any{"payload": "eA=="}
	var codes []int
	for range 6 {
		a := post(t, context.Background(), signURL(s, s.Email()), body)
		codes = append(codes, a.code)
		if a.code == http.StatusTooManyRequests {
			if code, status, _ := googleError(t, a); code != 429 || status != "RESOURCE_EXHAUSTED" {
				t.Errorf("429 body = %d %s", code, status)
			}
		}
	}
	passed := 0
	for _, c := range codes {
		if c == 200 {
			passed++
		}
	}
	// The calls take well under a second, so at most one token refills.
	if passed < 3 || passed > 4 {
		t.Errorf("codes %v: want 3 (or 4 with one refill) to pass", codes)
	}
	if st := s.Stats(); st.Throttled != int64(6-passed) {
		t.Errorf("throttled count %d, want %d", st.Throttled, 6-passed)
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(0, 0)
	b := newBucket(10, 2, t0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, false}, // burst of 2 spent
		{50 * time.Millisecond, false},                           // half a token
		{100 * time.Millisecond, true},                           // one token after 100ms at 10/s
		{100 * time.Millisecond, false},                          //
		{time.Hour, true}, {time.Hour, true}, {time.Hour, false}, // refill caps at the burst
	}
	for i, s := range steps {
		if got := b.take(t0.Add(s.at)); got != s.want {
			t.Errorf("step %d at %v: take = %v, want %v", i, s.at, got, s.want)
		}
	}
	if !newBucket(0, 0, t0).take(t0) {
		t.Error("quota 0 must mean unlimited")
	}
}

func TestWindow(t *testing.T) {
	w := newWindow(3, time.Minute)
	minute := time.Unix(1_700_000_040, 0) // 17:00 on some day: a whole minute
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{10 * time.Second, true}, {10 * time.Second, true}, {11 * time.Second, true}, // 3 per minute
		{11 * time.Second, false}, {59*time.Second + 999*time.Millisecond, false}, // dry until the minute ends
		{time.Minute, true}, {time.Minute, true}, {time.Minute, true}, {time.Minute + 1, false}, // reset on the minute
		{5 * time.Minute, true}, // later windows start fresh
	}
	for i, s := range steps {
		if got := w.take(minute.Add(s.at)); got != s.want {
			t.Errorf("step %d at %v: take = %v, want %v", i, s.at, got, s.want)
		}
	}
}

func TestQuotaWindowAnswers429UntilTheReset(t *testing.T) {
	// 2 per second over a one-second window: two calls pass, the rest of
	// the second is answered 429, the next second admits two again.
	s := start(t, Options{Quota: 2, Window: time.Second})
	body := map[string]any{"payload": "eA=="}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	var codes []int
	for range 4 {
		codes = append(codes, post(t, context.Background(), signURL(s, s.Email()), body).code)
	}
	if want := []int{200, 200, 429, 429}; !slices.Equal(codes, want) {
		t.Errorf("codes in one window %v, want %v", codes, want)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	if a := post(t, context.Background(), signURL(s, s.Email()), body); a.code != 200 {
		t.Errorf("first call of the next window: %d, want 200", a.code)
	}
}

func TestSeededFaultsRepeat(t *testing.T) {
	o := &Options{ErrorRate: 0.3, HangRate: 0.1, DeniedRate: 0.2, Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 42}
	type draw struct {
		f       fault
		latency time.Duration
		status  int
	}
	roll := func() []draw {
		d := newDice(o)
		out := make([]draw, 200)
		for i := range out {
			out[i].f, out[i].latency, out[i].status = d.roll()
		}
		return out
	}
	a, b := roll(), roll()
	kinds := map[fault]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs between runs with the same seed: %+v vs %+v", i, a[i], b[i])
		}
		if a[i].latency < 40*time.Millisecond || a[i].latency > 60*time.Millisecond {
			t.Fatalf("latency %v outside 50ms ± 10ms", a[i].latency)
		}
		if (a[i].f == faultServer) != (a[i].status >= 500) {
			t.Fatalf("draw %+v: only server faults carry a 5xx status", a[i])
		}
		kinds[a[i].f]++
	}
	// 200 draws at 10/30/20%: every kind shows up.
	for _, f := range []fault{faultNone, faultHang, faultServer, faultDenied} {
		if kinds[f] == 0 {
			t.Errorf("fault %d never drawn in 200 rolls: %v", f, kinds)
		}
	}
}

func TestInjectedFaultsAnswerLikeGoogle(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		codes  []int
		status map[int]string
	}{
		{"server errors", Options{ErrorRate: 1}, []int{500, 502, 503}, map[int]string{500: "INTERNAL", 503: "UNAVAILABLE"}},
		{"transient 403", Options{DeniedRate: 1}, []int{403}, map[int]string{403: "PERMISSION_DENIED"}},
		{"hang ends at HangMax", Options{HangRate: 1, HangMax: 10 * time.Millisecond}, []int{504}, map[int]string{504: "DEADLINE_EXCEEDED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.opts)
			for range 12 {
				a := post(t, context.Background(), signURL(s, s.Email()), map[string]any{"payload": "eA=="})
				ok := false
				for _, c := range tc.codes {
					ok = ok || a.code == c
				}
				if !ok {
					t.Fatalf("status %d, want one of %v", a.code, tc.codes)
				}
				if a.code == http.StatusBadGateway {
					if !bytes.Contains(a.body, []byte("502")) {
						t.Errorf("502 page = %s", a.body)
					}
					continue
				}
				if _, status, msg := googleError(t, a); status != tc.status[a.code] {
					t.Errorf("status %q, want %q (%s)", status, tc.status[a.code], msg)
				} else if a.code == 403 && !strings.Contains(msg, "iam.serviceAccounts.signBlob") {
					t.Errorf("403 message %q does not name the permission", msg)
				}
			}
		})
	}
}

func TestHangEndsWhenClientGivesUpOrEmulatorCloses(t *testing.T) {
	s := start(t, Options{HangRate: 1, HangMax: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, signURL(s, s.Email()), strings.NewReader(`{"payload":"eA=="}`))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a hung request answered %d", resp.StatusCode)
	}
	// The handler notices the client left.
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Canceled == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := s.Stats(); st.Hung != 1 || st.Canceled != 1 {
		t.Errorf("stats = %+v, want one hang, one cancellation", st)
	}

	// A request still held when the server closes is released, so Close
	// does not wait an hour.
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodPost, signURL(s, s.Email()), strings.NewReader(`{"payload":"eA=="}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for s.Stats().Hung < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := s.Close(ctx2); err != nil {
		t.Errorf("close with a held request: %v", err)
	}
	<-done
}

func TestKeyFile(t *testing.T) {
	path := vectors.Path(vectors.DummyKey)
	k, err := ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(&Options{Key: k.Key, KeyID: k.KeyID, Email: k.Email})
	if err != nil {
		t.Fatal(err)
	}
	if e.Email() != k.Email || e.KeyID() != k.KeyID || e.Generated() {
		t.Errorf("emulator = %s %s generated=%v, want the key file's %s %s", e.Email(), e.KeyID(), e.Generated(), k.Email, k.KeyID)
	}
	if _, err := ParseKeyFile([]byte(`{"private_key":"nope"}`)); err == nil {
		t.Error("a key file without a PEM key parsed")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    *Options
		ok   bool
	}{
		{"nil", nil, true},
		{"rates", &Options{ErrorRate: 0.5, HangRate: 0.2, DeniedRate: 0.3}, true},
		{"rate above 1", &Options{ErrorRate: 1.5}, false},
		{"rates sum above 1", &Options{ErrorRate: 0.6, HangRate: 0.6}, false},
		{"negative latency", &Options{Latency: -time.Second}, false},
		{"negative quota", &Options{Quota: -1}, false},
		{"window", &Options{Quota: 1000, Window: time.Minute}, true},
		{"negative window", &Options{Quota: 1000, Window: -time.Minute}, false},
		{"window admits nothing", &Options{Quota: 0.5, Window: time.Second}, false},
		{"email", &Options{Email: "not-an-email"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before Options
			if tc.o != nil {
				before = *tc.o
			}
			err := tc.o.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if tc.o != nil && *tc.o != before {
				t.Error("Validate modified its input")
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	s := start(t, Options{})
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz = %d", resp.StatusCode)
	}
	if s.Endpoint() != s.URL()+"/" || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %q, Endpoint %q", s.URL(), s.Endpoint())
	}
}
