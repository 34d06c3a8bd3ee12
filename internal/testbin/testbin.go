// Package testbin builds the linkissuer binary for tests that run it as a
// subprocess (cli's demo, deploy's checks of the shipped binary), once per
// test process.
//
// It builds from a fresh clone of the repository's HEAD, as a newcomer
// would (or from the working tree when it has uncommitted changes, as during
// development), with the compiler settings of the Dockerfile's build:
// CGO_ENABLED=0 and -trimpath. With -trimpath the packages' file paths do not
// depend on where the clone sits, and with the Dockerfile's settings deploy's
// build of the image binary and this one compile the same packages, so once
// the Go build cache holds them (from an earlier run) a build is a link.
package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// built is the one build of this process.
var built struct {
	once sync.Once
	dir  string // temporary directory holding the clone and the binary
	path string
	note string // how it was built, when not from a clean clone
	err  error
}

// Linkissuer returns the path of the linkissuer binary, building it on the
// first call in this process; later calls return the same file. It skips t
// when there is no go tool on PATH and fails it when the build fails. Call
// Cleanup from TestMain to remove the binary when the tests are done.
func Linkissuer(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("no go tool on PATH: %v", err)
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "linkissuer-testbin-")
		if built.err == nil {
			built.path, built.note, built.err = build(built.dir)
		}
	})
	if built.err != nil {
		t.Fatalf("building linkissuer: %v", built.err)
	}
	if built.note != "" {
		t.Log(built.note)
	}
	return built.path
}

// Cleanup removes what Linkissuer built. Call it from TestMain after m.Run.
func Cleanup() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// build clones the repository into tmp and builds linkissuer there.
func build(tmp string) (bin, note string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src, note, err := cleanCheckout(ctx, root, filepath.Join(tmp, "src"))
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(tmp, "linkissuer")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("CGO_ENABLED=0 go build -trimpath in %s: %w\n%s", src, err, out)
	}
	return bin, note, nil
}

// moduleRoot is the directory of the main module's go.mod, found from the
// test's working directory (its package directory).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// cleanCheckout returns a fresh clone of root's HEAD in dir, so that the
// binary is built only from tracked files, or root itself (with a note
// saying so) when it has uncommitted changes or is not a git checkout.
func cleanCheckout(ctx context.Context, root, dir string) (string, string, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return root, "building linkissuer from the working tree (no git)", nil
	}
	status, err := exec.CommandContext(ctx, git, "-C", root, "status", "--porcelain").Output()
	if err != nil || len(status) != 0 {
		return root, "building linkissuer from the working tree (not a clean git checkout)", nil
	}
	if out, err := exec.CommandContext(ctx, git, "clone", "--quiet", "--", root, dir).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("git clone: %w\n%s", err, out)
	}
	return dir, "", nil
}
