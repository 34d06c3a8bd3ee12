// Package testbin builds the linkissuer binary for tests that run it as a
// subprocess (cli's demo, deploy's checks of the shipped binary), once per
// source tree: the binary is kept in a cache directory under os.TempDir()
// keyed by the source (HEAD's commit, plus the content of any uncommitted
// change) and the go tool's version and target settings, so that the test
// processes of one `go test ./...` run (and later runs over the same source)
// share one build. A changed source, Go version, GOOS, GOARCH or GOAMD64
// gives another key, hence a fresh build.
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
	"crypto/sha256"
	"encoding/hex"
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
	path string
	note string // how it was built, when not from a clean clone
	err  error
}

// cacheDir holds one directory per key, each holding a linkissuer binary.
var cacheDir = filepath.Join(os.TempDir(), "linkissuer-testbin-cache")

// maxAge is how long an unused cached binary is kept.
const maxAge = 24 * time.Hour

// Linkissuer returns the path of the linkissuer binary, building it on the
// first call in this process; later calls return the same file. It skips t
// when there is no go tool on PATH and fails it when the build fails. Call
// Cleanup from TestMain to remove the binary when the tests are done.
func Linkissuer(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("no go tool on PATH: %v", err)
	}
	built.once.Do(func() { built.path, built.note, built.err = cached() })
	if built.err != nil {
		t.Fatalf("building linkissuer: %v", built.err)
	}
	if built.note != "" {
		t.Log(built.note)
	}
	return built.path
}

// Cleanup removes cached binaries unused for a day; the one this process
// used stays for the next test process. Call it from TestMain after m.Run.
func Cleanup() {
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > maxAge {
			os.RemoveAll(filepath.Join(cacheDir, e.Name()))
		}
	}
}

// cached returns the cached binary of the current source, building it
// first if no test process has.
func cached() (bin, note string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	k, err := key(root)
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(cacheDir, k)
	bin = filepath.Join(dir, "linkissuer")
	if _, err := os.Stat(bin); err == nil {
		now := time.Now()
		os.Chtimes(dir, now, now) // used: Cleanup keeps it
		return bin, "", nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	built, note, err := build(root, tmp)
	if err != nil {
		return "", "", err
	}
	// Publish the build atomically; a process that built the same key
	// meanwhile has put an identical binary there first.
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return "", "", err
	}
	if err := os.Rename(built, filepath.Join(out, "linkissuer")); err != nil {
		return "", "", err
	}
	if err := os.Rename(out, dir); err != nil {
		if _, statErr := os.Stat(bin); statErr != nil {
			return "", "", fmt.Errorf("caching the binary: %w", err)
		}
	}
	return bin, note, nil
}

// key names the build: the go tool's version and target, HEAD, and the
// content of uncommitted changes (tracked and untracked files).
func key(root string) (string, error) {
	h := sha256.New()
	env, err := exec.Command("go", "env", "GOVERSION", "GOOS", "GOARCH", "GOAMD64", "GOFLAGS", "GOEXPERIMENT").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	h.Write(env)
	git := func(args ...string) ([]byte, error) {
		return exec.Command("git", append([]string{"-C", root}, args...)...).Output()
	}
	head, err := git("rev-parse", "HEAD")
	if err != nil {
		// No git: every process builds, as nothing names the source.
		return fmt.Sprintf("nogit-%d-%d", os.Getpid(), time.Now().UnixNano()), nil
	}
	h.Write(head)
	diff, err := git("diff", "--binary", "HEAD")
	if err != nil {
		return "", fmt.Errorf("git diff: %w", err)
	}
	h.Write(diff)
	untracked, err := git("ls-files", "-z", "--others", "--exclude-standard")
	if err != nil {
		return "", fmt.Errorf("git ls-files: %w", err)
	}
	for name := range strings.SplitSeq(string(untracked), "\x00") {
		if name == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// build clones the repository at root into tmp and builds linkissuer
// there.
func build(root, tmp string) (bin, note string, err error) {
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
