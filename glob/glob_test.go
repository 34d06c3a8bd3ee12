package glob

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name  string
		glob  string
		match []string
		miss  []string
	}{
		{name: "empty matches all", glob: "", match: []string{"", "a", "a/b/c"}},
		{name: "star", glob: "*.jpg", match: []string{"a.jpg", ".jpg"}, miss: []string{"a/b.jpg", "a.jpeg"}},
		{name: "star after dir", glob: "photos/*", match: []string{"photos/a", "photos/"}, miss: []string{"photos/a/b", "photo/a"}},
		{name: "double star", glob: "**.jpg", match: []string{"a.jpg", "a/b/c.jpg"}, miss: []string{"a.png"}},
		{name: "double star dir", glob: "a/**/b", match: []string{"a/b", "a/x/b", "a/x/y/b"}, miss: []string{"ab", "a/xb", "b"}},
		{name: "trailing double star", glob: "a/**", match: []string{"a/", "a/b/c"}, miss: []string{"a", "b/a/c"}},
		{name: "question", glob: "?.txt", match: []string{"a.txt", "é.txt", "😀.txt"}, miss: []string{"ab.txt", "/.txt"}},
		{name: "class", glob: "[abc]1", match: []string{"a1", "c1"}, miss: []string{"d1", "ab1"}},
		{name: "negated class", glob: "[!abc]1", match: []string{"d1", "z1", "é1"}, miss: []string{"a1"}},
		{name: "range", glob: "[a-c]x", match: []string{"bx"}, miss: []string{"dx"}},
		{name: "non-ASCII class", glob: "[éè]t", match: []string{"ét", "èt"}, miss: []string{"et", "Ã©t"}},
		{name: "bracket member", glob: "[]a]x", match: []string{"]x", "ax"}, miss: []string{"bx"}},
		{name: "alternatives", glob: "img.{jpg,png}", match: []string{"img.jpg", "img.png"}, miss: []string{"img.gif", "img.{jpg,png}"}},
		{name: "regexp metacharacters", glob: "a+b(c)$^.|\\", match: []string{"a+b(c)$^.|\\"}, miss: []string{"aab(c)$^x|\\"}},
		{name: "line break", glob: "new\nline*", match: []string{"new\nline and more"}, miss: []string{"new"}},
		// Each character of the pattern is one character of the name, not
		// one byte: "é" is two bytes in UTF-8.
		{name: "non-ASCII literal", glob: "médias/**", match: []string{"médias/a.jpg", "médias/x/y"}, miss: []string{"mÃ©dias/a.jpg", "medias/a.jpg"}},
		{name: "emoji and astral", glob: "😀/𝄞*", match: []string{"😀/𝄞", "😀/𝄞 score"}, miss: []string{"😀/x𝄞"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Compile(tc.glob)
			if err != nil {
				t.Fatal(err)
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
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, bad := range []string{"[abc", "{a,b", "[]", "[!", "[c-a]", "a\xffb"} {
		if g, err := Compile(bad); err == nil {
			t.Errorf("%q compiled to %v", bad, g.re)
		}
	}
}

// A pattern that makes backtracking matchers exponential ("**a" repeated,
// against a long name of a's that fails at the end) is matched by the
// automaton in one pass: this test finishes instead of hanging.
func TestNoBacktracking(t *testing.T) {
	g := MustCompile(strings.Repeat("**a", 30) + "b")
	name := strings.Repeat("a", 20000)
	if g.Match(name) {
		t.Error("matched a name without b")
	}
	if !g.Match(name + "b") {
		t.Error("missed a name ending in b")
	}
}

// reference is an independent matcher for the subset without classes and
// alternatives (*, **, "**/", ?, literals), by dynamic programming over
// runes: memo[i][j] says whether pattern[i:] matches name[j:].
func reference(pattern, name string) bool {
	p, n := []rune(pattern), []rune(name)
	memo := make([][]int8, len(p)+1)
	for i := range memo {
		memo[i] = make([]int8, len(n)+1)
	}
	var m func(i, j int) bool
	m = func(i, j int) bool {
		if memo[i][j] != 0 {
			return memo[i][j] > 0
		}
		var ok bool
		switch {
		case i == len(p):
			ok = j == len(n)
		case i+2 < len(p) && p[i] == '*' && p[i+1] == '*' && p[i+2] == '/':
			// "**/": nothing, or any run ending in '/'
			ok = m(i+3, j)
			for k := j; !ok && k < len(n); k++ {
				ok = n[k] == '/' && m(i+3, k+1)
			}
		case i+1 < len(p) && p[i] == '*' && p[i+1] == '*':
			for k := j; !ok && k <= len(n); k++ {
				ok = m(i+2, k)
			}
		case p[i] == '*':
			for k := j; !ok && k <= len(n); k++ {
				ok = m(i+1, k)
				if k < len(n) && n[k] == '/' {
					break
				}
			}
		case j == len(n):
			ok = false
		case p[i] == '?':
			ok = n[j] != '/' && m(i+1, j+1)
		default:
			ok = p[i] == n[j] && m(i+1, j+1)
		}
		memo[i][j] = -1
		if ok {
			memo[i][j] = 1
		}
		return ok
	}
	return m(0, 0)
}

// FuzzMatch checks Compile never panics, and that Match agrees with the
// reference matcher wherever the reference applies.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"médias/**", "médias/a.jpg"},
		{"médias/**", "mÃ©dias/a.jpg"},
		{"a/**/b", "a/b"},
		{"*/?x", "é/😀x"},
		{"**a**a**b", "aaaaaaaaaaaaaaaaaaaa"},
		{"img.{jpg,png}", "img.png"},
		{"[!a-c]*", "d/e"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 256 {
			return
		}
		g, err := Compile(pattern)
		if err != nil {
			return
		}
		got := g.Match(name)
		if pattern == "" || !utf8.ValidString(name) || strings.ContainsAny(pattern, "[]{},") {
			return
		}
		if want := reference(pattern, name); got != want {
			t.Fatalf("Compile(%q).Match(%q) = %v, reference says %v", pattern, name, got, want)
		}
	})
}
