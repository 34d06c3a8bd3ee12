package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestWriteVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{
			name: "installed by version, from a clean tree",
			info: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/linkissuer/linkissuer", Version: "v1.4.0"},
				Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			want: "linkissuer v1.4.0 (go1.26.8)\nrevision 0123abcd 2026-11-30T10:00:00Z\n",
		},
		{
			name: "built from a modified checkout",
			info: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
				Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}},
			want: "linkissuer (devel) (go1.26.8)\nrevision 0123abcd (modified)\n",
		},
		{
			name: "no VCS information",
			info: debug.BuildInfo{GoVersion: "go1.26.8"},
			want: "linkissuer (devel) (go1.26.8)\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			writeVersion(&b, &tc.info)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

// TestVersionFlagPrintsRevision builds the binary with VCS stamping and
// checks that --version and the version command print HEAD's revision.
func TestVersionFlagPrintsRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (or no git): %v", err)
	}
	if st, err := os.Stat(filepath.Join("..", ".git")); err != nil || !st.IsDir() {
		t.Skip("the go command records no VCS revision in a git worktree (.git is a file): run this test in a clone")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "linkissuer")
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, arg := range []string{"--version", "version"} {
		out, err := exec.CommandContext(ctx, bin, arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if !strings.HasPrefix(string(out), "linkissuer ") || !strings.Contains(string(out), "revision "+strings.TrimSpace(string(head))) {
			t.Errorf("%s printed %q, want the version and revision %s", arg, out, head)
		}
	}
}
