package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd   string   // upper case: FROM, RUN, ...
	flags []string // leading --name=value options
	args  string   // the rest
	line  int
}

type dockerfile struct {
	instructions []instruction
	args         map[string]string // ARG defaults
}

func parseDockerfile(path string) (*dockerfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	df := &dockerfile{args: map[string]string{}}
	sc := bufio.NewScanner(f)
	var pending strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && pending.Len() == 0) {
			continue // comments may sit inside a continued instruction
		}
		if pending.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(trimmed)
		df.add(pending.String(), start)
		pending.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if pending.Len() > 0 {
		return nil, fmt.Errorf("%s: unterminated continuation at line %d", path, start)
	}
	return df, nil
}

func (df *dockerfile) add(text string, line int) {
	cmd, rest, _ := strings.Cut(text, " ")
	in := instruction{cmd: strings.ToUpper(cmd), line: line}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		in.flags = append(in.flags, flag)
		rest = strings.TrimSpace(rest)
	}
	in.args = rest
	if in.cmd == "ARG" {
		name, def, _ := strings.Cut(rest, "=")
		df.args[name] = def
	}
	df.instructions = append(df.instructions, in)
}

// all returns the instructions of one kind.
func (df *dockerfile) all(cmd string) []instruction {
	var out []instruction
	for _, in := range df.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// expand substitutes ${NAME} and $NAME from the ARG defaults and overrides.
func (df *dockerfile) expand(s string, override map[string]string) (string, error) {
	var missing []string
	out := os.Expand(s, func(name string) string {
		if v, ok := override[name]; ok {
			return v
		}
		if v, ok := df.args[name]; ok {
			return v
		}
		missing = append(missing, name)
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q uses undeclared build args %v", s, missing)
	}
	return out, nil
}

// buildCommand is the Dockerfile's go build, ready to run.
type buildCommand struct {
	Words       []string // as written, after expansion
	Env         []string // NAME=value assignments before the command
	Args        []string // go build ...
	OutputIndex int      // index in Args of the -o value
	Output      string   // the -o value as written
}

// goBuild finds the RUN instruction that runs go build and splits it as sh
// would. It must be one simple command (no &&, pipes or redirections), so
// that this test runs exactly what the image build runs.
func (df *dockerfile) goBuild(override map[string]string) (*buildCommand, error) {
	var found *instruction
	for _, in := range df.all("RUN") {
		if strings.Contains(in.args, "go build") {
			if found != nil {
				return nil, fmt.Errorf("Dockerfile: go build appears in two RUN instructions (lines %d and %d)", found.line, in.line)
			}
			found = &in
		}
	}
	if found == nil {
		return nil, fmt.Errorf("Dockerfile: no RUN instruction runs go build")
	}
	words, err := shellWords(found.args)
	if err != nil {
		return nil, fmt.Errorf("Dockerfile line %d: %w", found.line, err)
	}
	bc := &buildCommand{OutputIndex: -1}
	assign := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	for i, w := range words {
		if w, err = df.expand(w, override); err != nil {
			return nil, fmt.Errorf("Dockerfile line %d: %w", found.line, err)
		}
		bc.Words = append(bc.Words, w)
		if len(bc.Args) == 0 && assign.MatchString(w) {
			bc.Env = append(bc.Env, w)
			continue
		}
		bc.Args = append(bc.Args, w)
		if i > 0 && words[i-1] == "-o" {
			bc.OutputIndex, bc.Output = len(bc.Args)-1, w
		}
	}
	if len(bc.Args) < 2 || bc.Args[0] != "go" || bc.Args[1] != "build" {
		return nil, fmt.Errorf("Dockerfile line %d: want `[VAR=value ...] go build ...`, got %q", found.line, found.args)
	}
	if bc.OutputIndex < 0 {
		return nil, fmt.Errorf("Dockerfile line %d: go build has no -o", found.line)
	}
	return bc, nil
}

// shellWords splits a command line as sh does for one simple command:
// quotes and backslashes, and no operators.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.IndexByte("&|;<>()`", c) >= 0:
			return nil, fmt.Errorf("shell operator %q in %q: keep the build one simple command", c, s)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ignoreRule is one .dockerignore line.
type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
}

// loadDockerignore reads a .dockerignore with Docker's semantics: paths are
// relative to the context root, '*' and '?' stay within a path element,
// '**' spans any number of them, a pattern that matches a directory
// excludes its contents, and a later '!' rule re-includes.
func loadDockerignore(path string) ([]ignoreRule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rules []ignoreRule
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			r.negate, line = true, strings.TrimSpace(rest)
		}
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		r.re = globRegexp(line)
		rules = append(rules, r)
	}
	return rules, nil
}

func globRegexp(glob string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; {
		case strings.HasPrefix(glob[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// ignored reports whether rel (slash-separated) is left out of the context.
func ignored(rules []ignoreRule, rel string) bool {
	out := false
	for _, r := range rules {
		if matchesOrParent(r.re, rel) {
			out = !r.negate
		}
	}
	return out
}

func matchesOrParent(re *regexp.Regexp, rel string) bool {
	for p := rel; p != "."; p = filepath.ToSlash(filepath.Dir(p)) {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

// copyContext copies the files of root that the rules keep into dst.
func copyContext(root, dst string, rules []ignoreRule) error {
	hasNegation := false
	for _, r := range rules {
		hasNegation = hasNegation || r.negate
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(rules, rel) {
			if d.IsDir() && !hasNegation {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestShellWords(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: `CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /x .`, want: []string{"CGO_ENABLED=0", "go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/x", "."}},
		{in: `go build -ldflags "-X main.v=\"1\"" .`, want: []string{"go", "build", "-ldflags", `-X main.v="1"`, "."}},
		{in: `a\ b  c`, want: []string{"a b", "c"}},
		{in: `go mod download && go build .`, wantErr: true},
		{in: `go build . > log`, wantErr: true},
		{in: `go build '.`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := shellWords(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && strings.Join(got, "|") != strings.Join(tt.want, "|")) {
			t.Errorf("shellWords(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestDockerignore checks the rules against paths the build needs and paths
// that must stay out of an image.
func TestDockerignore(t *testing.T) {
	rules, err := loadDockerignore(repoPath(dockerignorePath))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := filepath.Glob(repoPath("schema/jsonschema/*.json"))
	if err != nil || len(embedded) == 0 {
		t.Fatalf("no schema/jsonschema/*.json to check (they are embedded in the binary): %v", err)
	}
	keep := []string{"go.mod", "go.sum", "main.go", "cli/worker.go", "sign/engine/engine.go", "worker/push.go"}
	for _, e := range embedded {
		rel, _ := filepath.Rel(repoRoot, e)
		keep = append(keep, filepath.ToSlash(rel))
	}
	for _, p := range keep {
		if ignored(rules, p) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
	for _, p := range []string{
		".git/config", ".git", "sign/testdata/vectors.json", "worker/router_test.go", "deploy/README.md",
		"deploy/terraform/modules/linkissuer/main.tf", "README.md", "loadtest/keyless/main.go",
		"sa-key.pem", "cli/testdata/x.pem", "creds/credentials.json", "my-sa-key.json", ".env",
	} {
		if !ignored(rules, p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

func TestDockerignoreSemantics(t *testing.T) {
	rules := []ignoreRule{{re: globRegexp("**/testdata")}, {re: globRegexp("*.md")}, {re: globRegexp("docs")}, {re: globRegexp("docs/keep.md"), negate: true}}
	tests := []struct {
		path string
		want bool
	}{
		{"testdata/a", true}, {"a/b/testdata/c.json", true}, {"a/testdatax/c", false},
		{"README.md", true}, {"sub/README.md", false}, // '*' does not cross '/'
		{"docs/a/b", true}, {"docs/keep.md", false}, {"main.go", false},
	}
	for _, tt := range tests {
		if got := ignored(rules, tt.path); got != tt.want {
			t.Errorf("ignored(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// goModVersion is the go line of go.mod.
func goModVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(repoPath("go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// TestDockerfile checks the Dockerfile's shape against the code: the Go
// version, a static build of the main package, a distroless non-root
// runtime, and an entry point, port and default command the binary has.
func TestDockerfile(t *testing.T) {
	df, err := parseDockerfile(repoPath(dockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := df.args["GO_VERSION"], goModVersion(t); got != want {
		t.Errorf("Dockerfile ARG GO_VERSION=%s, go.mod says go %s", got, want)
	}
	froms := df.all("FROM")
	if len(froms) != 2 {
		t.Fatalf("want a build stage and a runtime stage, got %d FROM lines", len(froms))
	}
	builder, err := df.expand(froms[0].args, nil)
	if err != nil {
		t.Fatal(err)
	}
	image, stage, _ := strings.Cut(builder, " AS ")
	if !strings.HasPrefix(image, "golang:"+df.args["GO_VERSION"]) || stage == "" {
		t.Errorf("build stage FROM %q: want golang:%s... AS NAME", builder, df.args["GO_VERSION"])
	}
	runtimeImage := froms[1].args
	if !(strings.HasPrefix(runtimeImage, "gcr.io/distroless/static") && strings.HasSuffix(runtimeImage, ":nonroot")) {
		t.Errorf("runtime FROM %q: want gcr.io/distroless/static-*:nonroot (CA certificates, no shell, non-root)", runtimeImage)
	}

	bc, err := df.goBuild(map[string]string{"TARGETOS": "linux", "TARGETARCH": "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64"} {
		if !strings.Contains(strings.Join(bc.Env, " "), want) {
			t.Errorf("go build runs without %s: %v", want, bc.Words)
		}
	}
	for _, want := range []string{"-trimpath", "."} {
		if !slices.Contains(bc.Args, want) {
			t.Errorf("go build lacks %q: %v", want, bc.Args)
		}
	}
	if bc.Args[len(bc.Args)-1] != "." {
		t.Errorf("go build builds %q, want the main package at the module root (.)", bc.Args[len(bc.Args)-1])
	}

	copies := df.all("COPY")
	last := copies[len(copies)-1]
	if want := "--from=" + stage; len(last.flags) != 1 || last.flags[0] != want || last.args != bc.Output+" "+bc.Output {
		t.Errorf("runtime COPY %v %q: want %s %s %s", last.flags, last.args, want, bc.Output, bc.Output)
	}
	entry := jsonArray(t, df.all("ENTRYPOINT"))
	if len(entry) != 1 || entry[0] != bc.Output {
		t.Errorf("ENTRYPOINT %v, want [%q] (exec form: the binary is PID 1 and gets SIGTERM)", entry, bc.Output)
	}
	users := df.all("USER")
	if len(users) == 0 {
		t.Fatal("no USER: the image would run as root")
	}
	uid, err := strconv.Atoi(strings.Split(users[len(users)-1].args, ":")[0])
	if err != nil || uid == 0 {
		t.Errorf("USER %q: want a numeric non-root UID (Kubernetes runAsNonRoot cannot verify a name)", users[len(users)-1].args)
	}

	b := mustBinary(t)
	if got, want := df.all("EXPOSE"), b.worker.defaultPort(t); len(got) != 1 || got[0].args != want {
		t.Errorf("EXPOSE %v, want the binary's default port %s", got, want)
	}
	cmd := jsonArray(t, df.all("CMD"))
	if len(cmd) == 0 {
		t.Fatal("no CMD")
	}
	if code, out := b.run(t, cmd[0], "-h"); !strings.Contains(out, "Usage: linkissuer "+cmd[0]) {
		t.Errorf("CMD %v: `linkissuer %s -h` exited %d without its usage:\n%s", cmd, cmd[0], code, out)
	}
}

// TestDockerBuild runs the Dockerfile's build (see mustBinary) and checks
// that the result is the static binary the runtime image needs.
func TestDockerBuild(t *testing.T) {
	b := mustBinary(t)
	if runtime.GOOS == "linux" {
		static, err := isStatic(b.path)
		if err != nil {
			t.Fatal(err)
		}
		if !static {
			t.Error("the binary is dynamically linked: it cannot run on distroless/static")
		}
	}
	code, out := b.run(t, "help")
	if code != 0 {
		t.Fatalf("linkissuer help exited %d:\n%s", code, out)
	}
	for _, cmd := range []string{"worker", "serve"} {
		if !regexp.MustCompile(`(?m)^\s+` + cmd + `\s`).MatchString(out) {
			t.Errorf("linkissuer help does not list %q:\n%s", cmd, out)
		}
	}
	if len(b.worker.required) == 0 || len(b.serve.required) == 0 {
		t.Errorf("no required flags read from the usage lines (worker %v, serve %v)", b.worker.required, b.serve.required)
	}
}

func jsonArray(t *testing.T, ins []instruction) []string {
	t.Helper()
	if len(ins) != 1 {
		t.Fatalf("want one %v instruction, got %d", ins, len(ins))
	}
	var out []string
	if err := json.Unmarshal([]byte(ins[0].args), &out); err != nil {
		t.Fatalf("%s %s: want the exec (JSON array) form: %v", ins[0].cmd, ins[0].args, err)
	}
	return out
}
