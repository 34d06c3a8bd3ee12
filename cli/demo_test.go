package cli

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/internal/slowtest"
	"github.com/linkissuer/linkissuer/internal/testbin"
)

// demoEnv is the environment of the demo subprocess: this one's, without
// the variables that point at emulators, as on a fresh machine.
func demoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PUBSUB_EMULATOR_HOST=") || strings.HasPrefix(kv, "STORAGE_EMULATOR_HOST=") || strings.HasPrefix(kv, "LINKISSUER_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// manifestRow is a manifest row as the demo shows it; rows are in
// completion order, so which objects come first varies.
var manifestRow = regexp.MustCompile(`(?m)^     \{"object":"[^"]+","generation":\d+,"size":\d+,"content_type":"[^"]+","url":"http://127\.0\.0\.1:\d+/demo-media/[^"?]+\?X-Goog-Algorithm=…","expires_at":"[0-9TZ:-]+"\}$`)

var linkLine = regexp.MustCompile(`(?m)^ {7}http://127\.0\.0\.1:\d+/demo-media/\S+\?X-Goog-Algorithm=GOOG4-RSA-SHA256&\S*X-Goog-Signature=[0-9a-f]{512}$`)

// The README's main command runs the whole pipeline as a subprocess and
// exits 0, saying what it showed; with --keep-running it stays up until
// Ctrl-C.
func TestDemoSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the demo; skipped with -short")
	}
	bin := testbin.Linkissuer(t)

	tests := []struct {
		name string
		args []string
		slow bool // starts the real Pub/Sub emulator (Java): see slowtest
	}{
		{name: "pstest", args: []string{"demo"}},
		{name: "real emulator", args: []string{"demo", "--real-pubsub"}, slow: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.slow {
				slowtest.Require(t)
			}
			runDemoScript(t, bin, tc.args)
		})
	}
	t.Run("keep running", func(t *testing.T) { runDemoKeepRunning(t, bin) })
}

// runDemoScript runs the demo to its end and checks its key output lines.
func runDemoScript(t *testing.T, bin string, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = demoEnv()
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	if strings.Contains(stderr.String(), "pubsub emulator not installed") {
		t.Skip(stderr.String())
	}
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	if stderr.String() != "" {
		t.Errorf("demo wrote to stderr on success:\n%s", stderr.String())
	}
	for _, want := range []string{
		"\n1. Starting the local stack\n",
		"\n2. Starting the worker, the same code as in production:\n",
		"$ linkissuer worker --project linkissuer-demo --subscription linkissuer-worker",
		"\n3. Uploading 4 objects",
		"   uploaded gs://demo-media/reports/2026 Q3 – Zürich+Genève.pdf (50 bytes)\n",
		"     reports/2026 Q3 – Zürich+Genève.pdf  (generation ",
		"\n4. Running a bulk export job",
		"   done in ",
		": 4 listed, 4 signed, 0 refused by policy, 0 failed\n",
		"   manifest gs://demo-manifests/exports/demo-export-1.jsonl (jsonl), shared by its own signed link",
		"   200 OK, 50 bytes, Content-Type application/pdf\n",
		"   \"%PDF-1.7\\n% a tiny stand-in for a quarterly report\\n\"\n",
		"     request:        GET http://127.0.0.1:",
		"     verdict:        VALID\n",
		"   the link with its lifetime stretched to 7 days (X-Goog-Expires=604800):\n     verdict:        TAMPERED\n",
		"   the link pointed at another path (/photos/ instead of /reports/):\n     verdict:        TAMPERED\n",
		"     verdict:        EXPIRED\n",
		"     reason_code: invalid_json\n",
		"     field:       data\n",
		"\nDone in ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := len(manifestRow.FindAllString(out, -1)); n != 3 {
		t.Errorf("%d manifest rows shown, want the first 3", n)
	}
	if n := len(linkLine.FindAllString(out, -1)); n != len(demoObjects) {
		t.Errorf("%d link lines, want one per object (%d)", n, len(demoObjects))
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", out)
	}
}

// runDemoKeepRunning checks that with --keep-running the demo stays up
// after its script, prints the link of a file uploaded over HTTP as curl
// would, and exits 0 on Ctrl-C.
func runDemoKeepRunning(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--keep-running")
	cmd.Env = demoEnv()
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitFor := func(what string) {
		t.Helper()
		for !strings.Contains(stdout.String(), what) {
			select {
			case err := <-exited:
				t.Fatalf("demo exited (%v) before printing %q:\n%s\n%s", err, what, stdout.String(), stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitFor("Ctrl-C stops them.")
	waitFor("# Upload something")
	storageHost := exports(stdout.String())["STORAGE_EMULATOR_HOST"]
	if storageHost == "" {
		t.Fatalf("no STORAGE_EMULATOR_HOST printed:\n%s", stdout.String())
	}
	resp, err := http.Post(storageHost+"/upload/storage/v1/b/demo-media/o?uploadType=media&name=late%20arrival.txt", "text/plain", strings.NewReader("late"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %s", resp.Status)
	}
	waitFor("     late arrival.txt  (generation ")

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) || err != nil {
			t.Errorf("demo exited with %v after Ctrl-C:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30s of Ctrl-C")
	}
}
