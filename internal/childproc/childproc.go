// Package childproc runs a local server (Google's Pub/Sub emulator, MinIO)
// as a child process for tests, load tests and `linkissuer dev`: on a free
// loopback port, with its output copied line by line to a log, stopped by
// its own PID (never by name) when asked or when its context ends, and
// waited for, so that nothing outlives the caller.
package childproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago, for a
// child that takes its port on the command line.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Options configure Start; the zero value discards the output and kills at
// once on Stop.
type Options struct {
	// Log receives the child's stdout and stderr, line by line; nil
	// discards them.
	Log io.Writer
	// StopGrace is how long Stop waits after SIGTERM before it kills the
	// child; 0 kills at once.
	StopGrace time.Duration
	// Cleanup, if set, runs once the child has exited, before Done is
	// closed; or before Start returns, if the child did not start.
	Cleanup func()
}

// ErrExited is what WaitReady returns (wrapped, with the exit status) when
// the child exits before it is ready.
var ErrExited = errors.New("exited before it was ready")

// Process is a running child.
type Process struct {
	cmd   *exec.Cmd
	grace time.Duration
	done  chan struct{}
	once  sync.Once
	err   error
}

// Start starts cmd, whose Stdout and Stderr it sets. The child is stopped
// by Stop, or when ctx ends.
func Start(ctx context.Context, cmd *exec.Cmd, o Options) (_ *Process, err error) {
	if o.Cleanup != nil {
		defer func() {
			if err != nil {
				o.Cleanup()
			}
		}()
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, grace: o.StopGrace, done: make(chan struct{})}
	logged := make(chan struct{})
	go func() { // ends when the child closes its output
		defer close(logged)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
		}
	}()
	go func() {
		<-logged // Wait closes the pipe: every read must be done first
		p.err = cmd.Wait()
		if o.Cleanup != nil {
			o.Cleanup()
		}
		close(p.done)
	}()
	go func() { // ends with the child
		select {
		case <-ctx.Done():
			p.Stop()
		case <-p.done:
		}
	}()
	return p, nil
}

// WaitReady asks ready every 100 ms until it says yes. It fails when the
// child exits first (ErrExited), when ctx ends, or after timeout; it does
// not stop the child.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, ready func(ctx context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w: %v", ErrExited, p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %w", timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop ends the child by its PID: SIGTERM, then a kill after StopGrace (at
// once when it is 0). It waits for the exit (and Cleanup), and is safe to
// call more than once.
func (p *Process) Stop() {
	p.once.Do(func() {
		if p.grace <= 0 {
			_ = p.cmd.Process.Kill()
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(p.grace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			_ = p.cmd.Process.Kill()
		}
	})
	<-p.done
}

// Done is closed once the child has exited and Cleanup has run.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the child exited (exec.Cmd.Wait's error); it is set once Done
// is closed.
func (p *Process) Err() error { return p.err }

// PID is the child's process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }
