package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/durable"
	"github.com/linkissuer/linkissuer/internal/jobstest"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// TestServeDurableConfig: durable-link configuration errors stop serve
// (and the worker) before they connect to anything, naming the flag or
// variable.
func TestServeDurableConfig(t *testing.T) {
	good := durableKeyFile(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`[{"id":"k1","secret":"c2hvcnQ="}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		worker bool
		vars   map[string]string
		args   []string
		want   string
	}{
		{name: "no keys", args: []string{"--durable-links", "--public-url", "https://l.example.com"}, want: "--durable-links needs --durable-keys"},
		{name: "no public url", args: []string{"--durable-links", "--durable-keys", good}, want: "--durable-links needs --public-url"},
		{name: "bad key file", args: []string{"--durable-links", "--durable-keys", bad, "--public-url", "https://l.example.com"}, want: "--durable-keys: durable: key \"k1\": secret is 5 bytes"},
		{name: "invalid env bool", vars: map[string]string{"LINKISSUER_DURABLE_LINKS": "yes please"}, want: "$LINKISSUER_DURABLE_LINKS"},
		{name: "invalid env ttl", vars: map[string]string{"LINKISSUER_DURABLE_MAX_TTL": "forever"}, want: "$LINKISSUER_DURABLE_MAX_TTL"},
		{name: "secret not a version name", args: []string{"--durable-links", "--durable-keys", "sm://projects/p/keys", "--public-url", "https://l.example.com"}, want: "--durable-keys: \"sm://projects/p/keys\" is not sm://projects/PROJECT/secrets/SECRET"},
		{name: "revocations without durable links", args: []string{"--revocations", "gs://cfg/r.json"}, want: "--revocations needs --durable-links"},
		{name: "revocations not gs", args: []string{"--durable-links", "--durable-keys", good, "--public-url", "https://l.example.com", "--revocations", "cfg/r.json"}, want: "--revocations: \"cfg/r.json\" is not gs://BUCKET/OBJECT"},
		{name: "staleness bound under two intervals", args: []string{"--durable-links", "--durable-keys", good, "--public-url", "https://l.example.com", "--revocations", "gs://cfg/r.json", "--revocations-interval", "1m", "--revocations-max-age", "1m"}, want: "--revocations-max-age 1m0s is under two --revocations-interval (1m0s)"},
		{name: "invalid env interval", vars: map[string]string{"LINKISSUER_REVOCATIONS_INTERVAL": "often"}, want: "$LINKISSUER_REVOCATIONS_INTERVAL"},
		{name: "env enables without keys", vars: map[string]string{"LINKISSUER_DURABLE_LINKS": "true"}, want: "--durable-links needs --durable-keys"},
		{name: "worker: no public url", worker: true, args: []string{"--durable-links", "--durable-keys", good}, want: "--durable-links needs --public-url"},
		{name: "worker: lifetime over the cap", worker: true, args: []string{"--durable-links", "--durable-keys", good, "--public-url", "https://l.example.com", "--durable-max-ttl", "720h", "--durable-ttl", "721h"},
			want: "--durable-ttl 721h0m0s is outside 1m..720h0m0s (--durable-max-ttl)"},
		{name: "worker: lifetime under a minute", worker: true, args: []string{"--durable-links", "--durable-keys", good, "--public-url", "https://l.example.com", "--durable-ttl", "30s"}, want: "--durable-ttl 30s is outside"},
		{name: "worker: invalid env lifetime", worker: true, vars: map[string]string{"LINKISSUER_DURABLE_TTL": "a while"}, want: "$LINKISSUER_DURABLE_TTL"},
		{name: "worker: no revocations", worker: true, args: []string{"--revocations", "gs://cfg/r.json"}, want: "flag provided but not defined: -revocations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, errOut := emulateEnv(tt.vars)
			cmd := Serve
			if tt.worker {
				cmd = Worker
			}
			if code := cmd(context.Background(), env, tt.args); code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.want)
			}
		})
	}
}

// --durable-keys sm://... reads the key list from the Secret Manager
// access endpoint ($LINKISSUER_SECRETMANAGER_ENDPOINT points it at an
// in-process server: Secret Manager has no emulator).
func TestDurableKeysFromSecretManager(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	payload := base64.StdEncoding.EncodeToString([]byte(`[{"id":"2026-07","secret":"` + secret + `"},{"id":"2026-06","secret":"` + secret + `"}]`))
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		_, _ = io.WriteString(w, `{"name":"projects/1/secrets/durable-keys/versions/4","payload":{"data":"`+payload+`"}}`)
	}))
	t.Cleanup(srv.Close)
	env, _, _ := emulateEnv(map[string]string{"LINKISSUER_SECRETMANAGER_ENDPOINT": srv.URL})
	var d durableFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	d.register(fs, env)
	if err := fs.Parse([]string{"--durable-links", "--durable-keys", "sm://projects/p/secrets/durable-keys", "--public-url", "https://l.example.com", "--durable-keys-refresh", "0"}); err != nil {
		t.Fatal(err)
	}
	if err := d.check(); err != nil {
		t.Fatal(err)
	}
	ring, err := d.keyRing(context.Background(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ring.Current().IDs(), ","); got != "2026-07,2026-06" {
		t.Errorf("keys %s", got)
	}
	if len(paths) != 1 || paths[0] != "/v1/projects/p/secrets/durable-keys/versions/latest:access" {
		t.Errorf("requests %q", paths)
	}
}

// durableKeyFile writes a durable-link key file of one key and returns
// its path.
func durableKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "durable-keys.json")
	secret := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("d", 32)))
	if err := os.WriteFile(path, []byte(`[{"id":"2026-07","secret":"`+secret+`"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWorkerDurableLinks: `linkissuer worker --durable-links` on Google's
// Pub/Sub emulator and fake-gcs-server publishes, for each uploaded
// object, a link.v1 that carries a durable link; its token verifies with
// the key file, and `linkissuer serve --durable-links` with the same key
// file redirects it to a signed URL of the same object and generation,
// which verifies and downloads. With --audit-topic and
// --audit-fail-closed, every message has a "minted" record (path event,
// the subscription and message id, the token id and the token's
// fingerprint) beside its link's "issued" one; neither the records nor
// either command's log carries a token.
func TestWorkerDurableLinks(t *testing.T) {
	st := startRealStack(t)
	ensureTopic(t, st.PubSub, "audit")
	keyFile := durableKeyFile(t)
	const public = "https://links.example.com"
	durableArgs := []string{"--durable-links", "--durable-keys", keyFile, "--public-url", public}

	workerAddr, serveAddr := freeAddr(t), freeAddr(t)
	w := startCommand(Worker, serviceArgs(st, workerAddr, append([]string{"--subscription", st.Topology.WorkerSubscription,
		"--durable-ttl", "720h", "--audit-topic", "audit", "--audit-fail-closed"}, durableArgs...)...), serviceEnv(st))
	defer w.cancel()
	waitReady(t, w, workerAddr)
	s := startCommand(Serve, serviceArgs(st, serveAddr, append([]string{"--insecure-skip-auth"}, durableArgs...)...), serviceEnv(st))
	defer s.cancel()
	waitReady(t, s, serveAddr)

	names := []string{"mail/a.txt", "mail/b c.txt", "mail/ü.txt"}
	for _, name := range names {
		wr := st.Storage.Client().Bucket(st.Bucket).Object(name).NewWriter(t.Context())
		if _, err := io.WriteString(wr, "content of "+name); err != nil {
			t.Fatal(err)
		}
		if err := wr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	msgs := receive(t, st.PubSub, st.Topology.ResultsSubscription, len(names), 60*time.Second)
	if len(msgs) != len(names) {
		t.Fatalf("%d links, want %d", len(msgs), len(names))
	}
	keys, err := durable.LoadKeys(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	byToken := map[string]schema.Link{}
	var secrets []string
	for _, m := range msgs {
		var l schema.Link
		if err := json.Unmarshal(m.Data, &l); err != nil {
			t.Fatal(err)
		}
		if l.Durable == nil || !strings.HasPrefix(l.Durable.URL, public+durable.PathClick) {
			t.Fatalf("link without a durable link: %s", m.Data)
		}
		for k, v := range m.Attributes {
			if strings.Contains(v, durable.PathClick) {
				t.Errorf("attribute %s carries the durable link", k)
			}
		}
		tok := strings.TrimPrefix(l.Durable.URL, public+durable.PathClick)
		byToken[tok] = l
		secrets = append(secrets, tok)
		c, err := keys.Parse(tok, time.Now())
		if err != nil {
			t.Fatalf("%s: token does not verify: %v", l.Object, err)
		}
		if life := time.Unix(c.ExpiresAt, 0).Sub(time.Unix(c.IssuedAt, 0)); c.ID != l.Durable.ID || c.Bucket != l.Bucket ||
			c.Object != l.Object || c.Generation != l.Generation || c.Generation == 0 || c.Method != http.MethodGet || life != 30*24*time.Hour {
			t.Errorf("claims %+v (lifetime %s) for link to %s#%d", c, life, l.Object, l.Generation)
		}

		resp, err := noRedirect.Get("http://" + serveAddr + durable.PathClick + tok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: click answered %d", l.Object, resp.StatusCode)
		}
		p, err := sign.ParseSignedURL(loc, http.MethodGet, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyHMAC([]byte(serviceEnv(st)["LINKISSUER_HMAC_SECRET"])); err != nil {
			t.Errorf("%s: redirect target does not verify: %v", l.Object, err)
		}
		u, _ := url.Parse(loc)
		if u.Path != "/"+st.Bucket+"/"+l.Object || u.Query().Get("generation") != strconv.FormatInt(l.Generation, 10) {
			t.Errorf("%s#%d: click redirects to %s?generation=%s", l.Object, l.Generation, u.Path, u.Query().Get("generation"))
		}
		if got := jobstest.Get(t, loc); string(got) != "content of "+l.Object {
			t.Errorf("%s: download %q", l.Object, got)
		}
	}

	recs := auditRecords(t, st.PubSub, "audit-sub", 2*len(names))
	minted := 0
	for _, r := range recs {
		if r.Outcome != schema.OutcomeMinted {
			continue
		}
		minted++
		var tok string
		for candidate, l := range byToken {
			if l.Durable.ID == r.TokenID {
				tok = candidate
			}
		}
		l := byToken[tok]
		if tok == "" || r.Path != audit.PathEvent || r.MessageID != l.Source.MessageID || r.MessageID == "" ||
			!strings.HasSuffix(r.Subscription, st.Topology.WorkerSubscription) || r.Fingerprint != audit.TokenFingerprint(tok) ||
			r.Object != l.Object || r.Generation != l.Generation || !r.ExpiresAt.Equal(l.Durable.ExpiresAt) {
			t.Errorf("minted record %+v does not describe a published durable link", r)
		}
	}
	if minted != len(names) {
		t.Errorf("%d minted records of %d, want one per link", minted, len(recs))
	}

	for _, c := range []*commandRun{w, s} {
		c.cancel()
		if code := c.wait(t); code != ExitOK {
			t.Errorf("exit %d", code)
		}
		for _, tok := range secrets {
			if strings.Contains(c.stderr.String(), tok) {
				t.Errorf("the log carries a durable token:\n%s", c.stderr.String())
			}
		}
	}
	for _, r := range recs {
		data, _ := json.Marshal(r)
		for _, tok := range secrets {
			if strings.Contains(string(data), tok) {
				t.Errorf("audit record %s carries a durable token", r.RecordID)
			}
		}
	}
	if !strings.Contains(w.stderr.String(), "durable link minted") {
		t.Errorf("the worker's debug log does not say it minted:\n%s", w.stderr.String())
	}
}
