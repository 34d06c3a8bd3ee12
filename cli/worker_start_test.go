package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/internal/childproc"
	"github.com/linkissuer/linkissuer/internal/localstack"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
)

// hangLimit only detects a command that never returns; no test relies on
// how fast anything is.
const hangLimit = 90 * time.Second

// startLocalStack starts pstest, fake-gcs-server and the IAM emulator.
func startLocalStack(t *testing.T) *localstack.Stack {
	t.Helper()
	st, err := localstack.Start(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// startRealStack is startLocalStack on Google's Pub/Sub emulator, which
// behaves as the service does where pstest does not; without it the test
// is skipped (failed with $LINKISSUER_REQUIRE_PUBSUB_EMULATOR).
func startRealStack(t *testing.T) *localstack.Stack {
	t.Helper()
	st, err := localstack.Start(t.Context(), &localstack.Options{RealPubSub: true})
	if err != nil {
		if errors.Is(err, pubsubemu.ErrNotInstalled) && os.Getenv(pubsubemu.RequireEnv) == "" {
			t.Skipf("needs Google's Pub/Sub emulator: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// serviceArgs is a worker's (or serve's) healthy command line against st,
// signing with an HMAC key; more args override.
func serviceArgs(st *localstack.Stack, addr string, more ...string) []string {
	tp := st.Topology
	return append([]string{
		"--project", st.Project, "--results-topic", tp.Results, "--errors-topic", tp.Errors, "--jobs-topic", tp.Jobs,
		"--allow", st.Bucket, "--hmac-access-id", "GOOG1EXAMPLEACCESSID", "--addr", addr,
		"--grace", "2s", "--preflight-timeout", "3s", "--log-level", "debug",
	}, more...)
}

func serviceEnv(st *localstack.Stack) map[string]string {
	return map[string]string{"LINKISSUER_HMAC_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0", localstack.EnvStorage: st.StorageHost}
}

// freeAddr returns a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

type commandRun struct {
	code   chan int
	stderr *emuBuffer
	cancel context.CancelFunc
}

func startCommand(cmd Command, args []string, vars map[string]string) *commandRun {
	env, _, errOut := emulateEnv(vars)
	ctx, cancel := context.WithCancel(context.Background())
	r := &commandRun{code: make(chan int, 1), stderr: errOut, cancel: cancel}
	go func() { r.code <- cmd(ctx, env, args) }()
	return r
}

// wait returns the exit code once the command returns by itself.
func (r *commandRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case c := <-r.code:
		return c
	case <-time.After(hangLimit):
		r.cancel()
		t.Fatalf("the command did not exit by itself; stderr:\n%s", r.stderr.String())
		return -1
	}
}

// A worker that cannot do its job exits non-zero at start, with a message
// that says what to fix. Before the preflight checks, each of these ran on
// as a process that looked alive: a missing subscription or an unreachable
// Pub/Sub left it after "worker stopping" with /healthz answering 200 until
// killed, a taken --addr ran it without health or metrics, a missing topic
// had every message redelivered, and without storage credentials every job
// was dead-lettered.
func TestWorkerFailsFastAtStart(t *testing.T) {
	st := startLocalStack(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name    string
		args    []string
		procEnv map[string]string // process environment (client libraries read it)
		want    []string          // in stderr
	}{
		{name: "missing subscription", args: []string{"--subscription", "does-not-exist"},
			want: []string{"subscription does-not-exist does not exist", "gcloud pubsub subscriptions create does-not-exist"}},
		{name: "missing results topic", args: []string{"--subscription", st.Topology.WorkerSubscription, "--results-topic", "no-such-results"},
			want: []string{"topic no-such-results does not exist", "--results-topic"}},
		{name: "address in use", args: []string{"--subscription", st.Topology.WorkerSubscription, "--addr", taken.Addr().String()},
			want: []string{"listen on " + taken.Addr().String(), "address already in use", "--addr"}},
		{name: "no storage credentials", args: []string{"--subscription", st.Topology.WorkerSubscription},
			procEnv: map[string]string{localstack.EnvStorage: "", "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"},
			want:    []string{"no Cloud Storage client", "--jobs=false"}},
		{name: "Pub/Sub unreachable", args: []string{"--subscription", st.Topology.WorkerSubscription},
			procEnv: map[string]string{localstack.EnvPubSub: freeAddr(t)},
			want:    []string{"Pub/Sub is unreachable", "PUBSUB_EMULATOR_HOST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.procEnv {
				t.Setenv(k, v)
			}
			vars := serviceEnv(st)
			if _, ok := tt.procEnv[localstack.EnvStorage]; ok {
				delete(vars, localstack.EnvStorage)
			}
			r := startCommand(Worker, serviceArgs(st, freeAddr(t), tt.args...), vars)
			defer r.cancel()
			if code := r.wait(t); code != ExitFailure {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitFailure, r.stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr.String())
				}
			}
		})
	}
}

// A healthy worker is ready; with --jobs=false it needs no storage client.
// A subscription deleted under it ends it with exit 1 and one line naming
// the cause (before, Pull returned and the process waited for a signal
// that would never come from an orchestrator that saw /healthz 200).
func TestWorkerExitsWhenItsSubscriptionIsDeleted(t *testing.T) {
	// pstest keeps a deleted subscription's stream open; Google's emulator
	// ends it with NOT_FOUND, as the service does.
	st := startRealStack(t)
	t.Setenv(localstack.EnvStorage, "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
	addr := freeAddr(t)
	vars := serviceEnv(st)
	delete(vars, localstack.EnvStorage)
	r := startCommand(Worker, serviceArgs(st, addr, "--subscription", st.Topology.WorkerSubscription, "--jobs=false"), vars)
	defer r.cancel()
	waitReady(t, r, addr)

	subName := fmt.Sprintf("projects/%s/subscriptions/%s", st.Project, st.Topology.WorkerSubscription)
	if err := st.PubSub.SubscriptionAdminClient.DeleteSubscription(t.Context(), &pubsubpb.DeleteSubscriptionRequest{Subscription: subName}); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t); code != ExitFailure {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitFailure, r.stderr.String())
	}
	if n := strings.Count(r.stderr.String(), `"worker failed: receive from `+subName); n != 1 {
		t.Errorf("%d lines name the cause, want 1:\n%s", n, r.stderr.String())
	}
}

// waitReady polls /readyz until it answers 200; the command must not exit
// before.
func waitReady(t *testing.T, r *commandRun, addr string) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for time.Now().Before(deadline) {
		select {
		case c := <-r.code:
			t.Fatalf("exited %d before it was ready:\n%s", c, r.stderr.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("never ready:\n%s", r.stderr.String())
}

// serve runs the same checks before it takes requests.
func TestServeFailsFastAtStart(t *testing.T) {
	st := startLocalStack(t)
	r := startCommand(Serve, serviceArgs(st, freeAddr(t), "--errors-topic", "no-such-errors", "--insecure-skip-auth"), serviceEnv(st))
	defer r.cancel()
	if code := r.wait(t); code != ExitFailure {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitFailure, r.stderr.String())
	}
	if want := "topic no-such-errors does not exist"; !strings.Contains(r.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr.String())
	}
}

// SIGTERM ends the command within --grace whatever its work is doing: work
// that ignores its context is abandoned and the exit code says so.
func TestRunWithDeadlineAbandonsStuckWork(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	stuck := make(chan struct{})
	defer close(stuck)
	code := make(chan int, 1)
	go func() {
		code <- runWithDeadline(ctx, 10*time.Millisecond, zap.NewNop(), func() int { <-stuck; return ExitOK })
	}()
	cancel()
	select {
	case c := <-code:
		if c != ExitFailure {
			t.Fatalf("exit %d, want %d", c, ExitFailure)
		}
	case <-time.After(hangLimit):
		t.Fatal("runWithDeadline waited for work that ignores its context")
	}
	// Work that stops in time keeps its own exit code.
	ctx2, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if c := runWithDeadline(ctx2, time.Minute, zap.NewNop(), func() int { return ExitUsage }); c != ExitUsage {
		t.Fatalf("exit %d, want %d", c, ExitUsage)
	}
}
