package s3store_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/cli"
)

// signCLI runs `linkissuer sign` in process against the server, with the
// HMAC secret in the environment (never on the command line), and returns
// its JSON output lines.
func signCLI(t *testing.T, f *fixture, args ...string) []cliLink {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := cli.Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string {
			if k == "LINKISSUER_HMAC_SECRET" {
				return f.cfg.Key.Secret
			}
			return ""
		},
	}
	base := []string{"--endpoint", f.cfg.Endpoint, "--region", f.cfg.Region, "--hmac-access-id", f.cfg.Key.AccessID, "--output", "json"}
	if code := cli.Sign(context.Background(), env, append(base, args...)); code != cli.ExitOK {
		t.Fatalf("linkissuer sign exited %d: %s", code, stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), f.cfg.Key.Secret) {
		t.Fatal("linkissuer sign printed the secret")
	}
	var links []cliLink
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l cliLink
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		links = append(links, l)
	}
	return links
}

// cliLink is one line of `linkissuer sign --output json`.
type cliLink struct {
	Resource  string    `json:"resource"`
	Method    string    `json:"method"`
	ExpiresAt time.Time `json:"expires_at"`
	URL       string    `json:"url"`
}

// TestMinIOCLISign signs s3:// URLs with the command line, in bulk from a
// file, and uses them against MinIO: downloads, an upload with a signed
// header, and a URL signed --at a past time, already expired.
func TestMinIOCLISign(t *testing.T) {
	f := newFixture(t)
	const n = 200
	var list strings.Builder
	for i := range n {
		name := fmt.Sprintf("cli/file %03d.txt", i)
		f.put(t, name, bulkContent(i))
		fmt.Fprintf(&list, "s3://%s/%s\n", f.bucket, name)
	}
	file := filepath.Join(t.TempDir(), "urls.txt")
	if err := os.WriteFile(file, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("bulk GET from a file", func(t *testing.T) {
		links := signCLI(t, f, "--duration", "10m", "--from-file", file)
		if len(links) != n {
			t.Fatalf("%d links, want %d", len(links), n)
		}
		for i, l := range links {
			wantResource := fmt.Sprintf("s3://%s/cli/file %03d.txt", f.bucket, i)
			if l.Resource != wantResource {
				t.Fatalf("link %d is for %s, want %s (input order)", i, l.Resource, wantResource)
			}
			body, status, err := fetch(t.Context(), l.URL)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusOK || !bytes.Equal(body, bulkContent(i)) {
				t.Errorf("%s: status %d, %d bytes; want 200 and %d bytes", l.Resource, status, len(body), len(bulkContent(i)))
			}
		}
	})

	t.Run("PUT with a signed header", func(t *testing.T) {
		links := signCLI(t, f, "--method", "PUT", "--header", "Content-Type: text/csv", fmt.Sprintf("s3://%s/cli/upload.csv", f.bucket))
		upload := func(contentType string) response {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, links[0].URL, strings.NewReader("a,b\n1,2\n"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", contentType)
			return do(t, req)
		}
		if r := upload("text/plain"); r.status != http.StatusForbidden || r.err.Code != "SignatureDoesNotMatch" {
			t.Errorf("PUT with another Content-Type: %d %s, want 403 SignatureDoesNotMatch", r.status, r.err.Code)
		}
		if r := upload("text/csv"); r.status != http.StatusOK {
			t.Fatalf("PUT: %d %s: %s", r.status, r.err.Code, r.err.Message)
		}
		if got := readAll(t, f.client, f.bucket, "cli/upload.csv"); string(got) != "a,b\n1,2\n" {
			t.Errorf("uploaded %q", got)
		}
	})

	t.Run("signed in the past, already expired", func(t *testing.T) {
		at := time.Now().UTC().Add(-2 * time.Hour).Format(time.RFC3339)
		links := signCLI(t, f, "--at", at, "--duration", "1h", fmt.Sprintf("s3://%s/cli/file 000.txt", f.bucket))
		if !links[0].ExpiresAt.Before(time.Now()) {
			t.Fatalf("link expires %s, which is not in the past", links[0].ExpiresAt)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, links[0].URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := do(t, req)
		if r.status != http.StatusForbidden || r.err.Code != "AccessDenied" || !strings.Contains(r.err.Message, "Request has expired") {
			t.Errorf("expired URL: %d %s (%s), want 403 AccessDenied: Request has expired", r.status, r.err.Code, r.err.Message)
		}
	})
}
