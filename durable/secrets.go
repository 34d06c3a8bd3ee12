package durable

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultSecretManagerEndpoint is the Secret Manager REST API.
const DefaultSecretManagerEndpoint = "https://secretmanager.googleapis.com"

// maxSecret bounds a secret payload (Secret Manager's own limit is 64 KiB).
const maxSecret = 64 << 10

// SecretManager reads secret versions through the Secret Manager REST API
// (GET /v1/projects/P/secrets/S/versions/V:access). No emulator of Secret
// Manager exists; Endpoint is overridable so that tests serve the access
// endpoint from an in-process server.
type SecretManager struct {
	// Endpoint is scheme://host (default DefaultSecretManagerEndpoint).
	Endpoint string
	// HTTP carries credentials (an OAuth2 client with the cloud-platform
	// scope for the real API).
	HTTP *http.Client
}

var secretName = regexp.MustCompile(`^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}(/versions/(latest|[0-9]+))?$`)

// ParseSecretURL turns sm://projects/P/secrets/S[/versions/V] into a
// version resource name (version "latest" when none is given).
func ParseSecretURL(u string) (string, error) {
	name, ok := strings.CutPrefix(u, "sm://")
	if !ok || !secretName.MatchString(name) {
		return "", fmt.Errorf("%q is not sm://projects/PROJECT/secrets/SECRET[/versions/VERSION]", u)
	}
	if !strings.Contains(name, "/versions/") {
		name += "/versions/latest"
	}
	return name, nil
}

// Access returns the payload of a secret version (a name ParseSecretURL
// returns), checking its CRC32C when the API sends one.
func (s *SecretManager) Access(ctx context.Context, name string) ([]byte, error) {
	endpoint := s.Endpoint
	if endpoint == "" {
		endpoint = DefaultSecretManagerEndpoint
	}
	hc := s.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+"/v1/"+name+":access", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("secret manager: %s: %w", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4*maxSecret))
	if err != nil {
		return nil, fmt.Errorf("secret manager: %s: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Message string `json:"message"`
				Status  string `json:"status"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("secret manager: %s: %d %s %s", name, resp.StatusCode, e.Error.Status, e.Error.Message)
	}
	var v struct {
		Payload struct {
			Data       string `json:"data"`
			DataCrc32c string `json:"dataCrc32c"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("secret manager: %s: response: %w", name, err)
	}
	data, err := base64.StdEncoding.DecodeString(v.Payload.Data)
	if err != nil {
		return nil, fmt.Errorf("secret manager: %s: payload: %w", name, err)
	}
	if v.Payload.DataCrc32c != "" {
		want, err := strconv.ParseUint(v.Payload.DataCrc32c, 10, 32)
		if err != nil || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != uint32(want) {
			return nil, fmt.Errorf("secret manager: %s: payload checksum mismatch", name)
		}
	}
	return data, nil
}

// ParseKeys parses a key list (the key file's format) from data; source
// names it in errors.
func ParseKeys(data []byte, source string) (*Keys, error) {
	if len(data) > maxSecret {
		return nil, fmt.Errorf("durable: keys %s: %d bytes, at most %d", source, len(data), maxSecret)
	}
	var keys []Key
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("durable: keys %s: %w", source, err)
	}
	k, err := NewKeys(keys)
	if err != nil {
		return nil, fmt.Errorf("%w (keys %s)", err, source)
	}
	return k, nil
}

// KeyLoader loads a key set: from a file or a secret version.
type KeyLoader func(ctx context.Context) (*Keys, error)

// SecretKeys loads keys from a secret version (the key file's JSON as the
// payload). Rotation: add a version whose list starts with the new key
// and keeps the old ones; with version "latest" a refresh picks it up.
func SecretKeys(sm *SecretManager, name string) KeyLoader {
	return func(ctx context.Context) (*Keys, error) {
		data, err := sm.Access(ctx, name)
		if err != nil {
			return nil, err
		}
		return ParseKeys(data, "sm://"+name)
	}
}

// FileKeys loads keys from a key file.
func FileKeys(path string) KeyLoader {
	return func(context.Context) (*Keys, error) { return LoadKeys(path) }
}

// KeyRing holds the current key set, replaced whole by Refresh; Mint and
// Parse of a Server built on Current see a consistent set.
type KeyRing struct {
	cur atomic.Pointer[Keys]
}

// NewKeyRing returns a ring holding k.
func NewKeyRing(k *Keys) *KeyRing {
	r := &KeyRing{}
	r.cur.Store(k)
	return r
}

// Current is the key set in use.
func (r *KeyRing) Current() *Keys { return r.cur.Load() }

// Refresh reloads the keys every interval until ctx is done. A failed
// load keeps the keys in use (they stay valid: a key is only ever taken
// out by a successful load) and is logged.
func (r *KeyRing) Refresh(ctx context.Context, load KeyLoader, interval time.Duration, log *zap.Logger) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, min(interval, time.Minute))
		k, err := load(lctx)
		cancel()
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			log.Warn("durable keys not refreshed; the current keys stay in use", zap.Error(err))
		case err == nil:
			if old := r.cur.Swap(k); !sameKeys(old, k) {
				log.Info("durable keys rotated", zap.Strings("key_ids", k.IDs()))
			}
		}
	}
}

// IDs are the key ids, the signing key first.
func (ks *Keys) IDs() []string {
	out := make([]string, len(ks.list))
	for i, k := range ks.list {
		out[i] = k.ID
	}
	return out
}

func sameKeys(a, b *Keys) bool {
	if a == nil || len(a.list) != len(b.list) {
		return false
	}
	for i := range a.list {
		if a.list[i].ID != b.list[i].ID || string(a.list[i].Secret) != string(b.list[i].Secret) {
			return false
		}
	}
	return true
}
