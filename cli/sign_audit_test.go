package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/schema"
)

// TestSignAudit: `sign --audit-topic` on the Pub/Sub emulator writes one
// record per printed URL, with path cli and the caller; with
// --audit-fail-closed and a topic that does not exist, no URL is printed.
func TestSignAudit(t *testing.T) {
	ctx := context.Background()
	emu, err := pubsubemu.Start(ctx, nil)
	if err != nil {
		t.Skipf("Pub/Sub emulator unavailable: %v", err)
	}
	t.Cleanup(emu.Stop)
	t.Setenv("PUBSUB_EMULATOR_HOST", emu.Host)
	client, err := pubsub.NewClient(ctx, "proj")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := pubsubemu.EnsureTopic(ctx, client, "audit"); err != nil {
		t.Fatal(err)
	}
	if err := pubsubemu.EnsureSubscription(ctx, client, pubsubemu.Subscription{ID: "audit-sub", Topic: "audit"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LINKISSUER_SUBMITTER": "alice@example.com"}
	for _, mode := range []string{"fail-open", "fail-closed"} {
		args := []string{"--key-file", dummyKey, "--audit-topic", "projects/proj/topics/audit", "gs://b-1/a.txt", "gs://b-1/b c.txt"}
		if mode == "fail-closed" {
			args = append([]string{"--audit-fail-closed"}, args...)
		}
		code, stdout, stderr := runCmd(t, Sign, "", env, args...)
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", mode, code, stderr)
		}
		printed := map[string]bool{}
		for _, u := range strings.Fields(stdout) {
			fp, err := audit.Fingerprint(u)
			if err != nil {
				t.Fatal(err)
			}
			printed[fp] = true
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var (
			mu   sync.Mutex
			recs []schema.AuditRecord
		)
		err = client.Subscriber("audit-sub").Receive(rctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			if strings.Contains(string(m.Data), "Signature") || strings.Contains(string(m.Data), "://") {
				t.Errorf("record carries a URL or signature: %s", m.Data)
			}
			var r schema.AuditRecord
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Errorf("record: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			recs = append(recs, r)
			if len(recs) == len(printed) {
				cancel()
			}
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(printed) != 2 || len(recs) != 2 {
			t.Fatalf("%s: %d URLs printed, %d records", mode, len(printed), len(recs))
		}
		for _, r := range recs {
			if !printed[r.Fingerprint] || r.Path != audit.PathCLI || r.Caller != "alice@example.com" || r.Bucket != "b-1" {
				t.Errorf("%s: record %+v does not describe a printed URL", mode, r)
			}
		}
	}

	code, stdout, stderr := runCmd(t, Sign, "", env, "--key-file", dummyKey, "--audit-topic", "projects/proj/topics/missing", "--audit-fail-closed", "gs://b-1/a.txt")
	if code != ExitFailure || stdout != "" || !strings.Contains(stderr, "audit") {
		t.Errorf("missing audit topic, fail-closed: exit %d, stdout %q, stderr %q; want %d, nothing printed", code, stdout, stderr, ExitFailure)
	}
}
