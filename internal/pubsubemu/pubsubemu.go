// Package pubsubemu starts Google's Pub/Sub emulator (the Java jar shipped
// with the Cloud SDK) as a child process, for integration tests, benchmarks
// and `linkissuer dev`. The jar is started directly, not through gcloud, so
// that one PID stops it.
//
// Unlike the in-process pstest fake, the real emulator enforces exactly-once
// delivery and dead-letter policies and streams at realistic speed.
package pubsubemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrNotInstalled means no emulator jar or no java was found.
var ErrNotInstalled = errors.New("pubsub emulator not installed")

// JarEnv names an environment variable that points at the emulator jar,
// overriding the search of the Cloud SDK.
const JarEnv = "LINKISSUER_PUBSUB_EMULATOR_JAR"

// FindJar locates cloud-pubsub-emulator-*-all.jar: $LINKISSUER_PUBSUB_EMULATOR_JAR,
// then the Cloud SDK next to gcloud, then `gcloud info`.
func FindJar(ctx context.Context) (string, error) {
	if p := os.Getenv(JarEnv); p != "" {
		return p, nil
	}
	var roots []string
	if gcloud, err := exec.LookPath("gcloud"); err == nil {
		if real, err := filepath.EvalSymlinks(gcloud); err == nil {
			roots = append(roots, filepath.Dir(filepath.Dir(real)))
		}
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, gcloud, "info", "--format=value(installation.sdk_root)").Output()
		if err == nil {
			roots = append(roots, strings.TrimSpace(string(out)))
		}
	}
	roots = append(roots, "/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")
	for _, root := range roots {
		matches, _ := filepath.Glob(filepath.Join(root, "platform", "pubsub-emulator", "lib", "cloud-pubsub-emulator-*-all.jar"))
		if len(matches) > 0 {
			return matches[len(matches)-1], nil
		}
	}
	return "", fmt.Errorf("%w: no cloud-pubsub-emulator-*-all.jar under the Cloud SDK (install google-cloud-cli-pubsub-emulator or set %s)", ErrNotInstalled, JarEnv)
}

// Emulator is a running emulator process.
type Emulator struct {
	// Host is the host:port to put in PUBSUB_EMULATOR_HOST.
	Host string

	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
	err  error
}

// Start launches the emulator on a free loopback port and waits until it
// accepts connections. Logs go to logw (nil discards them). Stop it with
// Stop; it is also killed if ctx is cancelled.
func Start(ctx context.Context, logw io.Writer) (*Emulator, error) {
	jar, err := FindJar(ctx)
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("%w: java not on PATH", ErrNotInstalled)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(java, "-jar", jar, "--host=127.0.0.1", fmt.Sprintf("--port=%d", port))
	if logw == nil {
		logw = io.Discard
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting pubsub emulator: %w", err)
	}
	e := &Emulator{Host: host, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logw, sc.Text())
		}
	}()
	go func() {
		e.err = cmd.Wait()
		close(e.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			e.Stop()
		case <-e.done:
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", host, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return e, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("pubsub emulator exited before listening: %v", e.err)
		case <-ctx.Done():
			e.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.Stop()
			return nil, fmt.Errorf("pubsub emulator did not listen on %s within 60s", host)
		}
	}
}

// Stop kills the emulator process and waits for it to exit.
func (e *Emulator) Stop() {
	e.once.Do(func() {
		if e.cmd.Process != nil {
			_ = e.cmd.Process.Kill()
		}
	})
	<-e.done
}

// PID is the emulator's process ID.
func (e *Emulator) PID() int { return e.cmd.Process.Pid }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
