package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/internal/testbin"
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
	testbin.Cleanup()
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

// goVersionM runs `go version -m` on a binary and parses what it prints:
// a "FILE: GOVERSION" line, then runtime/debug.BuildInfo's text form with
// each line indented by a tab.
func goVersionM(t *testing.T, path string) *debug.BuildInfo {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", path, err)
	}
	first, rest, _ := strings.Cut(string(out), "\n")
	_, goVersion, _ := strings.Cut(first, ": ")
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(rest, "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	bi, err := debug.ParseBuildInfo(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatalf("go version -m %s: %v\n%s", path, err, out)
	}
	bi.GoVersion = strings.TrimSpace(goVersion)
	return bi
}

// settingsMayDiffer are the build settings in which the Dockerfile's build
// and a plain `go build .` may legitimately differ:
//   - -trimpath and -ldflags: the Dockerfile strips paths, the symbol table
//     and DWARF (-s -w); neither changes what the code does.
//   - CGO_*: the Dockerfile sets CGO_ENABLED=0 for a static binary; a
//     plain build enables cgo when a C compiler is present (and then records
//     the CGO_*FLAGS). TestDockerBuild checks that the image's binary is
//     static.
//   - vcs*: the build context leaves out .git (.dockerignore), so only a
//     plain build in a checkout can stamp the revision.
//
// Everything else (compiler, GOOS, GOARCH and its level, -tags, -buildmode,
// DefaultGODEBUG, ...) must be the same, and so must a setting that only
// one build records.
func settingMayDiffer(key string) bool {
	switch key {
	case "-trimpath", "-ldflags", "vcs":
		return true
	}
	return strings.HasPrefix(key, "CGO_") || strings.HasPrefix(key, "vcs.")
}

// TestDockerBuildMatchesGoBuild checks that the Dockerfile builds the same
// program as a plain `go build` of the repository (testbin's, the binary the
// other tests run): same Go version, main package and module, and the same
// dependencies at the same versions and checksums (with the same
// replacements). A .dockerignore or build-line change that swapped a
// dependency, added build tags or changed GOOS/GOARCH handling would show
// here.
func TestDockerBuildMatchesGoBuild(t *testing.T) {
	t.Parallel()
	b := mustBinary(t)
	plain := testbin.Linkissuer(t)
	docker, local := goVersionM(t, b.path), goVersionM(t, plain)

	if docker.GoVersion != local.GoVersion {
		t.Errorf("Go version: Dockerfile build %s, go build %s", docker.GoVersion, local.GoVersion)
	}
	if docker.Path != local.Path {
		t.Errorf("main package: Dockerfile build %q, go build %q", docker.Path, local.Path)
	}
	if docker.Main.Path != local.Main.Path || docker.Main.Path != "github.com/linkissuer/linkissuer" {
		t.Errorf("main module: Dockerfile build %q, go build %q, want github.com/linkissuer/linkissuer", docker.Main.Path, local.Main.Path)
	}
	// The main module's version comes from VCS stamping when a plain build
	// runs in a checkout (the context has no .git: always "(devel)" there).
	if _, stamped := settingsOf(local)["vcs"]; !stamped && docker.Main.Version != local.Main.Version {
		t.Errorf("main module version: Dockerfile build %q, go build %q", docker.Main.Version, local.Main.Version)
	}

	dockerDeps, localDeps := depsOf(docker), depsOf(local)
	if len(localDeps) == 0 {
		t.Error("go version -m lists no dependencies for the plain build: is the parsing right?")
	}
	for _, p := range slices.Sorted(maps.Keys(localDeps)) {
		if d, ok := dockerDeps[p]; !ok {
			t.Errorf("dependency %s: in go build's binary only", localDeps[p])
		} else if d != localDeps[p] {
			t.Errorf("dependency %s: Dockerfile build has %s, go build %s", p, d, localDeps[p])
		}
	}
	for _, p := range slices.Sorted(maps.Keys(dockerDeps)) {
		if _, ok := localDeps[p]; !ok {
			t.Errorf("dependency %s: in the Dockerfile build's binary only", dockerDeps[p])
		}
	}

	ds, ls := settingsOf(docker), settingsOf(local)
	for _, k := range slices.Sorted(maps.Keys(ds)) {
		if settingMayDiffer(k) {
			continue
		}
		if lv, ok := ls[k]; !ok {
			t.Errorf("build setting %s=%s: only the Dockerfile build has it", k, ds[k])
		} else if lv != ds[k] {
			t.Errorf("build setting %s: Dockerfile build %q, go build %q", k, ds[k], lv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		if _, ok := ds[k]; !ok && !settingMayDiffer(k) {
			t.Errorf("build setting %s=%s: only go build has it", k, ls[k])
		}
	}
	// What the Dockerfile promises, as recorded in the binary.
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if ds[k] != want {
			t.Errorf("Dockerfile build: %s=%q, want %q", k, ds[k], want)
		}
	}
}

// depsOf renders a binary's dependencies: module path -> "path version sum"
// (plus " => path version sum" when replaced).
func depsOf(bi *debug.BuildInfo) map[string]string {
	out := map[string]string{}
	for _, d := range bi.Deps {
		s := d.Path + " " + d.Version + " " + d.Sum
		if r := d.Replace; r != nil {
			s += " => " + r.Path + " " + r.Version + " " + r.Sum
		}
		out[d.Path] = s
	}
	return out
}

func settingsOf(bi *debug.BuildInfo) map[string]string {
	out := map[string]string{}
	for _, s := range bi.Settings {
		out[s.Key] = s.Value
	}
	return out
}
