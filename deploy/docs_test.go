package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var linkissuerEnv = regexp.MustCompile(`LINKISSUER_[A-Z0-9_]+`)

// TestEnvNamesExist checks every LINKISSUER_* name in the deployment files
// and docs (comments included) against the variables the binary reads: a
// misspelt or removed variable is silently ignored at run time.
func TestEnvNamesExist(t *testing.T) {
	b := mustBinary(t)
	known := map[string]bool{}
	for k := range b.worker.envs {
		known[k] = true
	}
	for k := range b.serve.envs {
		known[k] = true
	}
	files := []string{repoPath(dockerfilePath), repoPath(dockerignorePath), repoPath(readmePath)}
	for _, suffix := range []string{".tf", ".yaml"} {
		files = append(files, walkFiles(t, "deploy", suffix)...)
	}
	seen := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range linkissuerEnv.FindAllString(string(data), -1) {
			seen++
			if !known[strings.TrimRight(name, "_")] {
				t.Errorf("%s mentions %s, which the binary does not read", f, name)
			}
		}
	}
	if seen < 20 {
		t.Errorf("only %d LINKISSUER_* mentions found: is the scan reading the files?", seen)
	}
}

// TestReadmeLinks checks that repository paths the README names exist.
func TestReadmeLinks(t *testing.T) {
	data, err := os.ReadFile(repoPath(readmePath))
	if err != nil {
		t.Fatal(err)
	}
	paths := regexp.MustCompile("(?:^|[\\s`(])((?:deploy/|Dockerfile|BENCHMARKS\\.md)[A-Za-z0-9_./-]*)").FindAllStringSubmatch(string(data), -1)
	if len(paths) < 5 {
		t.Fatalf("only %d repository paths in the README", len(paths))
	}
	for _, m := range paths {
		p := strings.TrimRight(m[1], ".")
		if _, err := os.Stat(repoPath(p)); err != nil {
			t.Errorf("README names %s: %v", p, err)
		}
	}
}
