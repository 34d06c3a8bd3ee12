package jobs

import "testing"

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		glob  string
		match []string
		miss  []string
	}{
		{"", []string{"", "a", "a/b/c"}, nil},
		{"*.jpg", []string{"a.jpg", ".jpg"}, []string{"a/b.jpg", "a.jpeg"}},
		{"photos/*", []string{"photos/a", "photos/"}, []string{"photos/a/b", "photo/a"}},
		{"**.jpg", []string{"a.jpg", "a/b/c.jpg"}, []string{"a.png"}},
		{"a/**/b", []string{"a/b", "a/x/b", "a/x/y/b"}, []string{"ab", "a/xb", "b"}},
		{"a/**", []string{"a/", "a/b/c"}, []string{"a", "b/a/c"}},
		{"?.txt", []string{"a.txt"}, []string{"ab.txt", "/.txt"}},
		{"[abc]1", []string{"a1", "c1"}, []string{"d1", "ab1"}},
		{"[!abc]1", []string{"d1", "z1"}, []string{"a1"}},
		{"[a-c]x", []string{"bx"}, []string{"dx"}},
		{"img.{jpg,png}", []string{"img.jpg", "img.png"}, []string{"img.gif", "img.{jpg,png}"}},
		{"a+b(c)$^.", []string{"a+b(c)$^."}, []string{"aab(c)$^x"}},
		{"new\nline*", []string{"new\nline and more"}, []string{"new"}},
	} {
		g, err := CompileGlob(tc.glob)
		if err != nil {
			t.Errorf("%q: %v", tc.glob, err)
			continue
		}
		for _, n := range tc.match {
			if !g.Match(n) {
				t.Errorf("%q should match %q", tc.glob, n)
			}
		}
		for _, n := range tc.miss {
			if g.Match(n) {
				t.Errorf("%q should not match %q", tc.glob, n)
			}
		}
	}
	for _, bad := range []string{"[abc", "{a,b"} {
		if _, err := CompileGlob(bad); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
}

func TestErrorsObject(t *testing.T) {
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
