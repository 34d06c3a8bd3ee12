package cli

import (
	"context"
	"encoding/base64"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestServeDurableConfig: durable-link configuration errors stop serve
// (and the worker) before they connect to anything, naming the flag or
// variable.
func TestServeDurableConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keys.json")
	secret := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	if err := os.WriteFile(good, []byte(`[{"id":"k1","secret":"`+secret+`"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
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
