package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Paths of the files under test, relative to the repository root.
const (
	dockerfilePath   = "Dockerfile"
	dockerignorePath = ".dockerignore"
	terraformDir     = "deploy/terraform"
	moduleDir        = "deploy/terraform/modules/linkissuer"
	k8sDir           = "deploy/k8s"
	readmePath       = "deploy/README.md"
)

// repoRoot is the repository root: the test runs in deploy/.
var repoRoot = func() string {
	abs, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return abs
}()

func repoPath(rel string) string { return filepath.Join(repoRoot, filepath.FromSlash(rel)) }

// tmpRoot holds the build context copy and the binary; TestMain removes it.
var tmpRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "linkissuer-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary is linkissuer as the Dockerfile builds it, and what its help says.
type binary struct {
	path   string
	build  *buildCommand
	worker *commandHelp
	serve  *commandHelp
}

var (
	buildOnce sync.Once
	built     *binary
	buildErr  error
)

// mustBinary builds the binary once per test run, from the Dockerfile.
func mustBinary(t *testing.T) *binary {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = buildFromDockerfile() })
	if buildErr != nil {
		t.Fatalf("building the binary as the Dockerfile does: %v", buildErr)
	}
	return built
}

// buildFromDockerfile runs the Dockerfile's go build command in a copy of
// the build context (the repository filtered by .dockerignore), for the
// host's OS and architecture so that the result can run here.
func buildFromDockerfile() (*binary, error) {
	df, err := parseDockerfile(repoPath(dockerfilePath))
	if err != nil {
		return nil, err
	}
	bc, err := df.goBuild(map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH})
	if err != nil {
		return nil, err
	}
	ignore, err := loadDockerignore(repoPath(dockerignorePath))
	if err != nil {
		return nil, err
	}
	ctxDir := filepath.Join(tmpRoot, "context")
	if err := copyContext(repoRoot, ctxDir, ignore); err != nil {
		return nil, fmt.Errorf("copying the build context: %w", err)
	}
	out := filepath.Join(tmpRoot, "bin", "linkissuer")
	args := slices.Clone(bc.Args)
	args[bc.OutputIndex] = out
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = ctxDir // WORKDIR after COPY . .
	cmd.Env = append(os.Environ(), bc.Env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s (in the filtered context): %w\n%s", strings.Join(bc.Words, " "), err, msg)
	}
	b := &binary{path: out, build: bc}
	if b.worker, err = helpOf(out, "worker"); err != nil {
		return nil, err
	}
	if b.serve, err = helpOf(out, "serve"); err != nil {
		return nil, err
	}
	return b, nil
}

// run runs the binary and returns its exit code and combined output.
func (b *binary) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runBinary(b.path, args...)
}

func runBinary(path string, args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"HOME=/nonexistent"} // no LINKISSUER_* from the test's environment
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	}
	return -1, err.Error() + "\n" + out.String()
}

// isStatic reports whether an ELF executable needs no dynamic loader.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return false, err
	}
	return len(libs) == 0, nil
}

// commandHelp is what `linkissuer CMD -h` says.
type commandHelp struct {
	name string
	text string
	// required are the flags the usage line names before [flags].
	required []string
	flags    map[string]flagHelp
	// envs are all $VARIABLES the help mentions.
	envs map[string]bool
}

// flagHelp is one flag's entry.
type flagHelp struct {
	name  string
	usage string
	def   string
	envs  []string // from its [$VAR, ...] marker, in order
}

var (
	envRef     = regexp.MustCompile(`\$([A-Z][A-Z0-9_]*)`)
	envMarker  = regexp.MustCompile(`\[(\$[^\]]*)\]`)
	defaultVal = regexp.MustCompile(`\(default (.*)\)\s*$`)
)

func helpOf(path, command string) (*commandHelp, error) {
	code, out := runBinary(path, command, "-h")
	if !strings.Contains(out, "Usage: linkissuer "+command) {
		return nil, fmt.Errorf("linkissuer %s -h (exit %d) printed no usage:\n%s", command, code, out)
	}
	return parseHelp(command, out)
}

// parseHelp reads the flag package's PrintDefaults format under a usage line
// "Usage: linkissuer CMD --required X ... [flags]".
func parseHelp(command, text string) (*commandHelp, error) {
	h := &commandHelp{name: command, text: text, flags: map[string]flagHelp{}, envs: map[string]bool{}}
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		h.envs[m[1]] = true
	}
	var cur *flagHelp
	flush := func() {
		if cur != nil {
			cur.usage = strings.TrimSpace(cur.usage)
			if m := defaultVal.FindStringSubmatch(cur.usage); m != nil {
				cur.def = strings.Trim(m[1], `"`)
			}
			if m := envMarker.FindStringSubmatch(cur.usage); m != nil {
				for _, e := range envRef.FindAllStringSubmatch(m[1], -1) {
					cur.envs = append(cur.envs, e[1])
				}
			}
			h.flags[cur.name] = *cur
		}
		cur = nil
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "Usage: linkissuer "+command):
			for _, w := range strings.Fields(line) {
				if w == "[flags]" {
					break
				}
				if strings.HasPrefix(w, "--") {
					h.required = append(h.required, strings.TrimPrefix(w, "--"))
				}
			}
		case strings.HasPrefix(line, "  -"):
			flush()
			fields := strings.Fields(strings.TrimPrefix(line, "  -"))
			cur = &flagHelp{name: fields[0]}
		case cur != nil && strings.HasPrefix(line, "    \t"):
			cur.usage += " " + strings.TrimSpace(line)
		}
	}
	flush()
	if len(h.flags) == 0 {
		return nil, fmt.Errorf("linkissuer %s -h: no flags found in:\n%s", command, text)
	}
	for _, r := range h.required {
		if _, ok := h.flags[r]; !ok {
			return nil, fmt.Errorf("linkissuer %s: usage names --%s, which is not a flag", command, r)
		}
	}
	return h, nil
}

// flagByEnv returns the flag an environment variable sets.
func (h *commandHelp) flagByEnv(env string) (flagHelp, bool) {
	for _, f := range h.flags {
		if slices.Contains(f.envs, env) {
			return f, true
		}
	}
	return flagHelp{}, false
}

// defaultPort is the port of the -addr default (":8080").
func (h *commandHelp) defaultPort(t *testing.T) string {
	t.Helper()
	addr, ok := h.flags["addr"]
	if !ok || !strings.HasPrefix(addr.def, ":") {
		t.Fatalf("linkissuer %s: -addr default %q is not :PORT", h.name, addr.def)
	}
	return strings.TrimPrefix(addr.def, ":")
}

// defaultGrace is the -grace default.
func (h *commandHelp) defaultGrace(t *testing.T) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(h.flags["grace"].def)
	if err != nil {
		t.Fatalf("linkissuer %s: -grace default: %v", h.name, err)
	}
	return d
}

func TestParseHelp(t *testing.T) {
	const text = `Usage: linkissuer worker --subscription SUB --allow RULES [flags] --not-this

Flags:
  -addr string
    	listen address [$PORT] (default ":8080")
  -allow string
    	rules [$LINKISSUER_ALLOW]
  -keyless
    	keyless [$LINKISSUER_KEYLESS=true]
  -project string
    	project [$LINKISSUER_PROJECT, $GOOGLE_CLOUD_PROJECT]
  -secret string
    	from $LINKISSUER_SECRET only
  -subscription string
    	sub [$LINKISSUER_SUBSCRIPTION]
`
	h, err := parseHelp("worker", text)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"subscription", "allow"}; !slices.Equal(h.required, want) {
		t.Errorf("required = %v, want %v", h.required, want)
	}
	tests := []struct {
		flag, def string
		envs      []string
	}{
		{"addr", ":8080", []string{"PORT"}},
		{"allow", "", []string{"LINKISSUER_ALLOW"}},
		{"keyless", "", []string{"LINKISSUER_KEYLESS"}},
		{"project", "", []string{"LINKISSUER_PROJECT", "GOOGLE_CLOUD_PROJECT"}},
		{"secret", "", nil},
	}
	for _, tt := range tests {
		f := h.flags[tt.flag]
		if f.def != tt.def || !slices.Equal(f.envs, tt.envs) {
			t.Errorf("-%s: default %q envs %v, want %q %v", tt.flag, f.def, f.envs, tt.def, tt.envs)
		}
	}
	if !h.envs["LINKISSUER_SECRET"] {
		t.Error("a $VAR outside a [...] marker is not collected")
	}
	if got := h.defaultPort(t); got != "8080" {
		t.Errorf("defaultPort = %q", got)
	}
	if _, err := parseHelp("worker", "Usage: linkissuer worker --nope X [flags]\n  -a string\n    \tx\n"); err == nil {
		t.Error("a required flag that does not exist was accepted")
	}
}
