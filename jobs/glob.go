package jobs

import (
	"fmt"
	"regexp"
	"strings"
)

// Glob is a compiled source.match pattern in GCS matchGlob syntax, matched
// against the whole object name:
//
//   - any run of characters except '/'
//     **      any run of characters, '/' included; "**/" also matches nothing,
//     so "a/**/b" matches "a/b" and "a/x/y/b"
//     ?       one character except '/'
//     [abc]   one of the characters (ranges a-z allowed); [!abc] none of them
//     {a,b}   one of the comma-separated alternatives (not nested)
//
// Everything else matches itself. The zero Glob (from an empty pattern)
// matches every name.
type Glob struct {
	re *regexp.Regexp
}

// CompileGlob compiles pattern. schema.Job.Validate has already refused
// unbalanced brackets; CompileGlob reports them too.
func CompileGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, nil
	}
	var b strings.Builder
	b.WriteString(`^(?s:`)
	inAlt := false
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '*' && strings.HasPrefix(pattern[i:], "**/"):
			b.WriteString(`(?:.*/)?`)
			i += 2
		case c == '*' && strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(`.*`)
			i++
		case c == '*':
			b.WriteString(`[^/]*`)
		case c == '?':
			b.WriteString(`[^/]`)
		case c == '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end < 0 {
				return Glob{}, fmt.Errorf("jobs: glob %q: unterminated [", pattern)
			}
			class := pattern[i+1 : i+1+end]
			if end == 0 && i+2 < len(pattern) {
				// "[]...]": a leading ] is a member
				next := strings.IndexByte(pattern[i+2:], ']')
				if next < 0 {
					return Glob{}, fmt.Errorf("jobs: glob %q: unterminated [", pattern)
				}
				class = pattern[i+1 : i+2+next]
				end = next + 1
			}
			b.WriteString(globClass(class))
			i += end + 1
		case c == '{' && !inAlt:
			b.WriteString(`(?:`)
			inAlt = true
		case c == ',' && inAlt:
			b.WriteString(`|`)
		case c == '}' && inAlt:
			b.WriteString(`)`)
			inAlt = false
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if inAlt {
		return Glob{}, fmt.Errorf("jobs: glob %q: unterminated {", pattern)
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return Glob{}, fmt.Errorf("jobs: glob %q: %w", pattern, err)
	}
	return Glob{re: re}, nil
}

// globClass turns the inside of [...] into a regexp class.
func globClass(class string) string {
	var b strings.Builder
	b.WriteByte('[')
	if strings.HasPrefix(class, "!") {
		b.WriteByte('^')
		class = class[1:]
	}
	for _, r := range class {
		switch r {
		case '\\', '[', ']', '^':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte(']')
	return b.String()
}

// Match reports whether name matches g.
func (g Glob) Match(name string) bool { return g.re == nil || g.re.MatchString(name) }
