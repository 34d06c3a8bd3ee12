// Package glob matches object names against patterns in Cloud Storage's
// matchGlob syntax. It is the one glob engine: policy allow rules and
// content types, and bulk jobs' source.match, all use it.
//
// Syntax, matched against the whole name, character by character (UTF-8:
// "?" is one character, "é" matches "é"):
//
//	"*"      any run of characters except '/'
//	"**"     any run of characters, '/' included; "**/" also matches
//	         nothing, so "a/**/b" matches "a/b" and "a/x/y/b"
//	"?"      one character except '/'
//	"[abc]"  one of the characters (ranges a-z allowed); "[!abc]" none of them
//	"{a,b}"  one of the comma-separated alternatives (not nested)
//
// Everything else matches itself. Matching runs in time linear in the
// name's length (for a given pattern) whatever the pattern: it is compiled
// to an automaton (Go's RE2 regexp), which never backtracks, so "**" runs
// cannot blow up.
package glob

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Glob is a compiled pattern. The zero Glob (from an empty pattern) matches
// every name. A Glob is safe for concurrent use.
type Glob struct {
	re      *regexp.Regexp
	pattern string
}

// Compile compiles pattern. Unterminated "[" or "{" and invalid UTF-8 are
// errors.
func Compile(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, nil
	}
	if !utf8.ValidString(pattern) {
		return Glob{}, fmt.Errorf("glob %q: not valid UTF-8", pattern)
	}
	var b strings.Builder
	b.WriteString(`^(?s:`)
	inAlt := false
	for i := 0; i < len(pattern); {
		r, size := utf8.DecodeRuneInString(pattern[i:])
		switch {
		case strings.HasPrefix(pattern[i:], "**/"):
			b.WriteString(`(?:.*/)?`)
			i += 3
			continue
		case strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(`.*`)
			i += 2
			continue
		case r == '*':
			b.WriteString(`[^/]*`)
		case r == '?':
			b.WriteString(`[^/]`)
		case r == '[':
			class, n, err := classAt(pattern[i:])
			if err != nil {
				return Glob{}, fmt.Errorf("glob %q: %w", pattern, err)
			}
			b.WriteString(class)
			i += n
			continue
		case r == '{' && !inAlt:
			b.WriteString(`(?:`)
			inAlt = true
		case r == ',' && inAlt:
			b.WriteString(`|`)
		case r == '}' && inAlt:
			b.WriteString(`)`)
			inAlt = false
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+size]))
		}
		i += size
	}
	if inAlt {
		return Glob{}, fmt.Errorf("glob %q: unterminated {", pattern)
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return Glob{}, fmt.Errorf("glob %q: %w", pattern, err)
	}
	return Glob{re: re, pattern: pattern}, nil
}

// MustCompile is Compile for patterns known to be valid; it panics on an
// error.
func MustCompile(pattern string) Glob {
	g, err := Compile(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

// classAt turns the "[...]" at the start of s into a regexp class and says
// how many bytes of s it used. A ']' right after "[" or "[!" is a member.
func classAt(s string) (class string, n int, err error) {
	body := s[1:]
	start := 0
	if strings.HasPrefix(body, "!") {
		start = 1
	}
	end := strings.IndexByte(body[min(start+1, len(body)):], ']')
	if end < 0 {
		return "", 0, fmt.Errorf("unterminated [")
	}
	end += min(start+1, len(body))
	members := body[:end]
	var b strings.Builder
	b.WriteByte('[')
	if start == 1 {
		b.WriteByte('^')
		members = members[1:]
	}
	for _, r := range members {
		switch r {
		case '\\', '[', ']', '^':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte(']')
	return b.String(), 1 + end + 1, nil
}

// Match reports whether name matches g, whole.
func (g Glob) Match(name string) bool { return g.re == nil || g.re.MatchString(name) }

// String returns the pattern g was compiled from.
func (g Glob) String() string { return g.pattern }
