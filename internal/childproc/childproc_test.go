package childproc

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// lines is a Log that hands each line the child wrote to the test; made
// with room for every line, as the children here write one or two.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- strings.TrimSpace(string(p))
	return len(p), nil
}

// saw is a WaitReady probe: ready once every line in want has been logged.
func (l lines) saw(want ...string) func(context.Context) bool {
	seen := map[string]bool{}
	return func(context.Context) bool {
		for {
			select {
			case line := <-l:
				seen[line] = true
			default:
				for _, w := range want {
					if !seen[w] {
						return false
					}
				}
				return true
			}
		}
	}
}

func sh(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh: %v", err)
	}
	return exec.Command(bin, "-c", script)
}

// TestStopWithGrace: the child's output reaches the log, SIGTERM ends it
// within the grace, Cleanup runs before Done, and Stop can be called twice.
func TestStopWithGrace(t *testing.T) {
	t.Parallel()
	log := make(lines, 16)
	var cleaned atomic.Bool
	p, err := Start(context.Background(), sh(t, "echo ready; echo oops >&2; exec sleep 60"), Options{
		Log: log, StopGrace: 10 * time.Second, Cleanup: func() { cleaned.Store(true) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.PID() <= 0 {
		t.Errorf("PID() = %d", p.PID())
	}
	if err := p.WaitReady(context.Background(), 10*time.Second, log.saw("ready", "oops")); err != nil {
		t.Fatalf("WaitReady: %v (stdout and stderr not both logged)", err)
	}
	start := time.Now()
	p.Stop()
	p.Stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Stop took %s: SIGTERM was not enough", took)
	}
	if !cleaned.Load() {
		t.Error("Cleanup did not run before Stop returned")
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if p.Err() == nil {
		t.Error("Err() = nil for a child ended by a signal")
	}
}

// TestStopKills: a child that ignores SIGTERM is killed after the grace;
// with no grace it is killed at once.
func TestStopKills(t *testing.T) {
	t.Parallel()
	for _, grace := range []time.Duration{0, 200 * time.Millisecond} {
		log := make(lines, 16)
		p, err := Start(context.Background(), sh(t, `trap "" TERM; echo up; while :; do sleep 1; done`), Options{Log: log, StopGrace: grace})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitReady(context.Background(), 10*time.Second, log.saw("up")); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { p.Stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("grace %s: Stop did not return", grace)
		}
	}
}

// TestStopOnContext: the child ends when Start's context does.
func TestStopOnContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, sh(t, "exec sleep 60"), Options{StopGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the child outlived its context")
	}
}

// TestWaitReadyExited: a child that exits before it is ready is reported
// as such, with its exit status, not as a timeout.
func TestWaitReadyExited(t *testing.T) {
	t.Parallel()
	p, err := Start(context.Background(), sh(t, "exit 3"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	err = p.WaitReady(context.Background(), time.Minute, func(context.Context) bool { return false })
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("WaitReady = %v, want ErrExited with exit status 3", err)
	}
}

// TestWaitReadyTimeout: a child that never gets ready fails the wait
// after the timeout and is left running for the caller to stop.
func TestWaitReadyTimeout(t *testing.T) {
	t.Parallel()
	p, err := Start(context.Background(), sh(t, "exec sleep 60"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	err = p.WaitReady(context.Background(), 300*time.Millisecond, func(context.Context) bool { return false })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady = %v, want DeadlineExceeded", err)
	}
	select {
	case <-p.Done():
		t.Error("WaitReady stopped the child")
	default:
	}
}

// TestStartFailureCleansUp: a command that cannot start runs Cleanup
// before Start returns.
func TestStartFailureCleansUp(t *testing.T) {
	t.Parallel()
	cleaned := false
	_, err := Start(context.Background(), exec.Command("/nonexistent/linkissuer-no-such-binary"), Options{Cleanup: func() { cleaned = true }})
	if err == nil {
		t.Fatal("Start of a missing binary succeeded")
	}
	if !cleaned {
		t.Error("Cleanup did not run")
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if port <= 0 || port > 65535 {
		t.Errorf("FreePort() = %d", port)
	}
}
