package jobs

import "testing"

// The glob engine is package glob's (tested there); this pins that
// source.match uses it, non-ASCII included.
func TestCompileGlob(t *testing.T) {
	t.Parallel()
	g, err := CompileGlob("médias/**/*.{jpg,png}")
	if err != nil {
		t.Fatal(err)
	}
	if !g.Match("médias/2026/a.jpg") || g.Match("mÃ©dias/2026/a.jpg") || g.Match("médias/a.gif") {
		t.Errorf("source.match does not use the character-wise glob")
	}
	if _, err := CompileGlob("[abc"); err == nil {
		t.Error("an unterminated [ compiled")
	}
}

func TestErrorsObject(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"exports/a.jsonl":  "exports/a.errors.jsonl",
		"a.csv":            "a.errors.csv",
		"exports/manifest": "exports/manifest.errors",
		"exports.v2/list":  "exports.v2/list.errors",
		"exports/.hidden":  "exports/.hidden.errors",
	} {
		if got := ErrorsObject(in); got != want {
			t.Errorf("ErrorsObject(%q) = %q, want %q", in, got, want)
		}
	}
}
