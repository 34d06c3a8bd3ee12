package cli

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/internal/vectors"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/iam"
)

// emuBuffer is a bytes.Buffer safe to read while a command writes to it.
type emuBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *emuBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *emuBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func emulateEnv(vars map[string]string) (Env, *emuBuffer, *emuBuffer) {
	out, errOut := &emuBuffer{}, &emuBuffer{}
	return Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: errOut, Getenv: func(k string) string { return vars[k] }}, out, errOut
}

var endpointLine = regexp.MustCompile(`endpoint: +(http://127\.0\.0\.1:\d+/)`)

// runEmulate starts the command and waits for it to print its endpoint.
func runEmulate(t *testing.T, env Env, out *emuBuffer, args ...string) (endpoint string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() { code <- Emulate(ctx, env, args) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := endpointLine.FindStringSubmatch(out.String()); m != nil {
			endpoint = m[1]
			break
		}
		select {
		case c := <-code:
			cancel()
			t.Fatalf("emulate exited with %d before listening: %s", c, env.Stderr.(*emuBuffer).String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("emulate printed no endpoint")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return endpoint, func() int { cancel(); return <-code }
}

func TestEmulateServesSignBlobUntilCancelled(t *testing.T) {
	env, out, _ := emulateEnv(map[string]string{"LINKISSUER_IAM_LATENCY": "1ms"})
	endpoint, stop := runEmulate(t, env, out, "iam", "--addr", "127.0.0.1:0", "--quota", "0", "--email", "dev@p.iam.gserviceaccount.com", "--seed", "7")
	printed := out.String()
	for _, want := range []string{"listening on 127.0.0.1:", "service account: dev@p.iam.gserviceaccount.com", "-----BEGIN PUBLIC KEY-----", "latency 1ms", "seed 7"} {
		if !strings.Contains(printed, want) {
			t.Errorf("start-up output lacks %q:\n%s", want, printed)
		}
	}
	resp, err := http.Get(strings.TrimSuffix(endpoint, "/") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The printed endpoint is what sign --iam-endpoint takes.
	signer, err := iam.NewSigner(context.Background(), iam.Options{Email: "dev@p.iam.gserviceaccount.com", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := signer.Sign(context.Background(), sign.Scope{}, []byte("hello")); err != nil || len(sig) != 256 {
		t.Fatalf("signBlob through the printed endpoint: %d bytes, %v", len(sig), err)
	}
	if code := stop(); code != ExitOK {
		t.Errorf("exit code %d after cancellation, want 0", code)
	}
	if _, err := http.Get(strings.TrimSuffix(endpoint, "/") + "/healthz"); err == nil {
		t.Error("the emulator still answers after its context was cancelled")
	}
}

func TestEmulateWithKeyFile(t *testing.T) {
	path := vectors.Path(vectors.DummyKey)
	env, out, _ := emulateEnv(map[string]string{"LINKISSUER_IAM_ADDR": "127.0.0.1:0", "LINKISSUER_IAM_KEY_FILE": path})
	_, stop := runEmulate(t, env, out, "iam")
	defer stop()
	key, err := sign.LoadKeyFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	if !strings.Contains(printed, "service account: "+key.Credential().Identity) || !strings.Contains(printed, "key id:          "+key.KeyID()) {
		t.Errorf("output does not name the key file's account and key:\n%s", printed)
	}
	if strings.Contains(printed, "BEGIN PUBLIC KEY") {
		t.Error("printed a public key for a key that was given, not generated")
	}
}

func TestEmulateUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no target", nil, ExitUsage},
		{"unknown target", []string{"pubsub"}, ExitUsage},
		{"help", []string{"-h"}, ExitOK},
		{"bad flag", []string{"iam", "--nope"}, ExitUsage},
		{"rate above 1", []string{"iam", "--addr", "127.0.0.1:0", "--error-rate", "2"}, ExitUsage},
		{"missing key file", []string{"iam", "--addr", "127.0.0.1:0", "--key-file", "/nonexistent.json"}, ExitUsage},
		{"stray argument", []string{"iam", "extra"}, ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _, errOut := emulateEnv(nil)
			if code := Emulate(context.Background(), env, tc.args); code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errOut.String())
			}
		})
	}
}
