package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/durable"
	"github.com/linkissuer/linkissuer/internal/localstack"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

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
	st, err := localstack.Start(t.Context(), &localstack.Options{RealPubSub: true})
	if err != nil {
		if errors.Is(err, pubsubemu.ErrNotInstalled) && os.Getenv(pubsubemu.RequireEnv) == "" {
			t.Skipf("needs Google's Pub/Sub emulator: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
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
		if got := httpGet(t, loc); string(got) != "content of "+l.Object {
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
