// Package pubsubemu starts Google's Pub/Sub emulator (the Java jar shipped
// with the Cloud SDK) as a child process (package childproc), for integration
// tests, benchmarks and `linkissuer dev`. The jar is started directly, not
// through gcloud, so that one PID stops it.
//
// Unlike the in-process pstest fake, the real emulator enforces exactly-once
// delivery and dead-letter policies and streams at realistic speed.
package pubsubemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/internal/childproc"
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

	proc *childproc.Process
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
	port, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	e := &Emulator{Host: fmt.Sprintf("127.0.0.1:%d", port)}
	cmd := exec.Command(java, "-jar", jar, "--host=127.0.0.1", fmt.Sprintf("--port=%d", port))
	if e.proc, err = childproc.Start(ctx, cmd, childproc.Options{Log: logw}); err != nil {
		return nil, fmt.Errorf("pubsub emulator: %w", err)
	}
	listening := func(context.Context) bool {
		conn, err := net.DialTimeout("tcp", e.Host, 200*time.Millisecond)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	if err := e.proc.WaitReady(ctx, 60*time.Second, listening); err != nil {
		e.Stop()
		return nil, fmt.Errorf("pubsub emulator on %s: %w", e.Host, err)
	}
	return e, nil
}

// Stop kills the emulator process and waits for it to exit.
func (e *Emulator) Stop() { e.proc.Stop() }

// PID is the emulator's process ID.
func (e *Emulator) PID() int { return e.proc.PID() }
