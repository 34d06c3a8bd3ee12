package durable

// Secret Manager has no emulator (the Cloud SDK ships none and no
// open-source stand-in exists), so these tests serve its REST access
// endpoint, GET /v1/projects/P/secrets/S/versions/V:access, from an
// in-process httptest server that answers as the real API does (payload
// base64 with its CRC32C, google.rpc errors), and point
// SecretManager.Endpoint at it.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeSecrets serves secret versions; "latest" is the highest.
type fakeSecrets struct {
	mu       sync.Mutex
	versions [][]byte
	corrupt  bool
	denied   bool
}

func (f *fakeSecrets) add(payload string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions = append(f.versions, []byte(payload))
}

func (f *fakeSecrets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.denied {
		writeRPCError(w, http.StatusForbidden, "PERMISSION_DENIED", "Permission 'secretmanager.versions.access' denied")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/projects/p/secrets/durable-keys/versions/")
	version, ok2 := strings.CutSuffix(rest, ":access")
	if r.Method != http.MethodGet || !ok || !ok2 {
		writeRPCError(w, http.StatusNotFound, "NOT_FOUND", "Secret [projects/p/secrets/other] not found or has no versions.")
		return
	}
	n := len(f.versions)
	if version != "latest" {
		var err error
		if n, err = strconv.Atoi(version); err != nil || n < 1 || n > len(f.versions) {
			writeRPCError(w, http.StatusNotFound, "NOT_FOUND", "Secret Version [projects/p/secrets/durable-keys/versions/"+version+"] not found.")
			return
		}
	}
	if n == 0 {
		writeRPCError(w, http.StatusNotFound, "NOT_FOUND", "Secret [projects/p/secrets/durable-keys] not found or has no versions.")
		return
	}
	data := f.versions[n-1]
	sum := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	if f.corrupt {
		sum++
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"name":    "projects/123/secrets/durable-keys/versions/" + strconv.Itoa(n),
		"payload": map[string]string{"data": base64.StdEncoding.EncodeToString(data), "dataCrc32c": strconv.FormatUint(uint64(sum), 10)},
	})
}

func writeRPCError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

func keyList(ids ...string) string {
	var ks []Key
	for _, id := range ids {
		ks = append(ks, Key{ID: id, Secret: []byte(strings.Repeat(id, 32)[:32])})
	}
	b, _ := json.Marshal(ks)
	return string(b)
}

func TestParseSecretURL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{in: "sm://projects/p/secrets/durable-keys", want: "projects/p/secrets/durable-keys/versions/latest"},
		{in: "sm://projects/p/secrets/durable-keys/versions/3", want: "projects/p/secrets/durable-keys/versions/3"},
		{in: "sm://projects/p/secrets/durable-keys/versions/latest", want: "projects/p/secrets/durable-keys/versions/latest"},
		{in: "sm://projects/p/secrets/k/versions/x"},
		{in: "sm://projects/p/secrets/"},
		{in: "sm://secrets/k"},
		{in: "projects/p/secrets/k"},
		{in: "sm://projects/p/secrets/k/../../other"},
	}
	for _, tt := range tests {
		got, err := ParseSecretURL(tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("ParseSecretURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSecretManagerAccess(t *testing.T) {
	f := &fakeSecrets{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	sm := &SecretManager{Endpoint: srv.URL}
	ctx := context.Background()
	if _, err := sm.Access(ctx, "projects/p/secrets/durable-keys/versions/latest"); err == nil || !strings.Contains(err.Error(), "404 NOT_FOUND") {
		t.Errorf("no versions: %v", err)
	}
	f.add(keyList("k1"))
	k, err := SecretKeys(sm, "projects/p/secrets/durable-keys/versions/latest")(ctx)
	if err != nil || strings.Join(k.IDs(), ",") != "k1" {
		t.Fatalf("keys %v, %v", k, err)
	}
	f.mu.Lock()
	f.corrupt = true
	f.mu.Unlock()
	if _, err := sm.Access(ctx, "projects/p/secrets/durable-keys/versions/1"); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("corrupt payload: %v", err)
	}
	f.mu.Lock()
	f.corrupt = false
	f.mu.Unlock()
	f.add(`[{"id":"short","secret":"c2hvcnQ="}]`)
	if _, err := SecretKeys(sm, "projects/p/secrets/durable-keys/versions/2")(ctx); err == nil || !strings.Contains(err.Error(), "keys sm://projects/p/secrets/durable-keys/versions/2") {
		t.Errorf("bad key list: %v", err)
	}
}

// Rotation through Secret Manager: links minted under the old key keep
// working while the new version lists it, links minted after the refresh
// use the new key, and removing the old key ends its links (404). A failed
// refresh keeps the keys in use.
func TestSecretManagerRotation(t *testing.T) {
	f := &fakeSecrets{}
	f.add(keyList("k1"))
	sm := httptest.NewServer(f)
	t.Cleanup(sm.Close)
	load := SecretKeys(&SecretManager{Endpoint: sm.URL}, "projects/p/secrets/durable-keys/versions/latest")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ring := NewKeyRing(first)
	const refresh = 20 * time.Millisecond
	done := make(chan struct{})
	go func() { defer close(done); ring.Refresh(ctx, load, refresh, zap.NewNop()) }()
	defer func() { cancel(); <-done }()

	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	s := newStack(t, first, urls, gcs)
	s.durable.o.Ring = ring
	old := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`)

	waitKeys := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Join(ring.Current().IDs(), ",") != want {
			if time.Now().After(deadline) {
				t.Fatalf("keys %v, want %s", ring.Current().IDs(), want)
			}
			time.Sleep(refresh / 2)
		}
	}
	f.add(keyList("k2", "k1"))
	waitKeys("k2,k1")
	fresh := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`)
	c, err := ring.Current().Parse(strings.TrimPrefix(fresh.URL, "https://links.example.com/l/"), time.Now())
	if err != nil || c.KeyID != "k2" {
		t.Errorf("minted after rotation under %q, %v; want k2", c.KeyID, err)
	}
	for _, m := range []MintResponse{old, fresh} {
		if status, _ := s.click(t, m.URL); status != http.StatusFound {
			t.Errorf("click of %s during rotation: %d, want 302", m.ID, status)
		}
	}
	// The secret becomes unreadable: the keys in use stay.
	f.mu.Lock()
	f.denied = true
	f.mu.Unlock()
	time.Sleep(3 * refresh)
	if got := strings.Join(ring.Current().IDs(), ","); got != "k2,k1" {
		t.Errorf("after failed refreshes: keys %s, want k2,k1", got)
	}
	f.mu.Lock()
	f.denied = false
	f.mu.Unlock()
	f.add(keyList("k2"))
	waitKeys("k2")
	if status, _ := s.click(t, old.URL); status != http.StatusNotFound {
		t.Errorf("old key removed: click %d, want 404", status)
	}
	if status, _ := s.click(t, fresh.URL); status != http.StatusFound {
		t.Errorf("new key: click %d, want 302", status)
	}
}
