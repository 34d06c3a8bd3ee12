package schema

import (
	"context"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of objects and arrays in any JSON this
// package reads. Our formats nest at most five levels and a storage#object
// about four; deeper input is refused before it is decoded.
const MaxJSONDepth = 32

// scanCheckEvery is how many bytes the scanner reads between two looks at
// its context.
const scanCheckEvery = 64 << 10

// A scanner makes one pass over a JSON text before encoding/json decodes it,
// and refuses what encoding/json would accept but change or choke on:
// strings holding invalid UTF-8 or a lone UTF-16 surrogate escape (\ud800),
// both of which encoding/json silently turns into U+FFFD, and nesting deeper
// than MaxJSONDepth. It is linear in the input: every byte is looked at a
// bounded number of times, and the work per bad string is bounded by
// MaxJSONDepth times the length of the longest name path. It stops with the
// context's error within scanCheckEvery bytes of the context ending.
//
// Syntax errors are not its business: it stops looking at the first byte it
// does not expect and leaves the report to encoding/json, which names the
// offset.
type scanner struct {
	data  []byte
	names [][]string // JSON paths (keys, array indices left out) that hold object names
	stack []scanFrame
	// keyed counts the frames of stack that are objects with a current key:
	// the length of the path of a value read now.
	keyed int
	// work counts steps (bytes read plus path comparisons) so that a test
	// can show the scan is linear without measuring time.
	work int

	// The first bad string, and the first on a name path.
	bad, badName *badString
}

type scanFrame struct {
	object    bool
	expectKey bool
	// key is the raw current key of an object frame (without quotes), and
	// hasKey says whether there is one.
	key    []byte
	hasKey bool
}

// badString is a string that encoding/json would change.
type badString struct {
	path   string
	offset int
	// surrogate is the lone escape ("\ud800"), empty for invalid UTF-8.
	surrogate string
}

func (b *badString) reason() string {
	if b.surrogate != "" {
		return "lone UTF-16 surrogate " + b.surrogate + " (not a character; it would be replaced by U+FFFD)"
	}
	return "not valid UTF-8"
}

// scanJSON runs a scanner over data. names lists the dotted paths that hold
// object names: a bad string there is reported with code
// invalid_object_name, elsewhere with invalid_json. field prefixes the path
// in the error ("data" for GCS payloads).
func scanJSON(ctx context.Context, data []byte, prefix string, names []string) error {
	s := &scanner{data: data}
	for _, n := range names {
		s.names = append(s.names, strings.Split(n, "."))
	}
	if err := s.run(ctx); err != nil {
		return err
	}
	b, code := s.badName, CodeInvalidObjectName
	if b == nil {
		b, code = s.bad, CodeInvalidJSON
	}
	if b == nil {
		return nil
	}
	field := join(prefix, b.path)
	if field == "" {
		field = "data"
	}
	return fieldErr(code, field, "%s at byte %d", b.reason(), b.offset)
}

// run scans until the end, a syntax error, a bad string on a name path, or
// the context's end.
func (s *scanner) run(ctx context.Context) error {
	d := s.data
	next := scanCheckEvery
	for i := 0; i < len(d); {
		if i >= next {
			if err := ctx.Err(); err != nil {
				return err
			}
			next = i + scanCheckEvery
		}
		s.work++
		switch c := d[i]; c {
		case ' ', '\t', '\r', '\n', ',', ':':
			if c == ',' || c == ':' {
				s.punct(c)
			}
			i++
		case '{', '[':
			if len(s.stack) == MaxJSONDepth {
				return fieldErr(CodeInvalidJSON, "data", "nested deeper than %d levels at byte %d", MaxJSONDepth, i)
			}
			s.push(c == '{')
			i++
		case '}', ']':
			if len(s.stack) == 0 {
				return nil // a syntax error; encoding/json reports it
			}
			s.pop()
			i++
		case '"':
			end, ok := s.str(ctx, i)
			if !ok {
				return ctx.Err() // unterminated (a syntax error) or cancelled
			}
			if s.badName != nil {
				return nil
			}
			i = end
		default:
			if c >= utf8.RuneSelf {
				return nil // not JSON; encoding/json reports it
			}
			i++ // numbers, true, false, null: nothing to check
		}
	}
	return nil
}

func (s *scanner) push(object bool) {
	if top := s.top(); top != nil && top.object {
		top.expectKey = false
	}
	s.stack = append(s.stack, scanFrame{object: object, expectKey: object})
}

func (s *scanner) pop() {
	if top := s.top(); top.hasKey {
		s.keyed--
	}
	s.stack = s.stack[:len(s.stack)-1]
}

func (s *scanner) punct(c byte) {
	top := s.top()
	if top == nil || !top.object {
		return
	}
	top.expectKey = c == ','
}

func (s *scanner) top() *scanFrame {
	if len(s.stack) == 0 {
		return nil
	}
	return &s.stack[len(s.stack)-1]
}

// str reads the string starting at data[start] (a quote), notes it if it is
// bad, records it as the key when it is one, and returns the index after
// its closing quote. ok is false when the string does not end or the
// context ended while reading it.
func (s *scanner) str(ctx context.Context, start int) (end int, ok bool) {
	d := s.data
	// badAt is the offset of the string's first bad character (-1: none);
	// badEscape says whether it is a surrogate escape (six bytes there).
	badAt, badEscape := -1, false
	mark := func(i int, escape bool) {
		if badAt < 0 {
			badAt, badEscape = i, escape
		}
	}
	pendingHigh := -1 // index of an unpaired high surrogate escape
	i := start + 1
	for next := i + scanCheckEvery; ; {
		if i >= len(d) {
			return 0, false
		}
		if i >= next {
			if ctx.Err() != nil {
				return 0, false
			}
			next = i + scanCheckEvery
		}
		s.work++
		c := d[i]
		switch {
		case c == '"':
			if pendingHigh >= 0 {
				mark(pendingHigh, true)
			}
			s.endString(d[start+1:i], badAt, badEscape)
			return i + 1, true
		case c == '\\':
			if i+1 >= len(d) {
				return 0, false
			}
			if d[i+1] != 'u' {
				if pendingHigh >= 0 {
					mark(pendingHigh, true)
					pendingHigh = -1
				}
				i += 2
				continue
			}
			if i+6 > len(d) {
				return 0, false
			}
			r, valid := hex4(d[i+2 : i+6])
			if !valid {
				return 0, false // a syntax error; encoding/json reports it
			}
			switch {
			case r >= 0xD800 && r < 0xDC00:
				if pendingHigh >= 0 {
					mark(pendingHigh, true)
				}
				pendingHigh = i
			case r >= 0xDC00 && r < 0xE000:
				if pendingHigh < 0 {
					mark(i, true)
				}
				pendingHigh = -1
			default:
				if pendingHigh >= 0 {
					mark(pendingHigh, true)
					pendingHigh = -1
				}
			}
			i += 6
		default:
			if pendingHigh >= 0 {
				mark(pendingHigh, true)
				pendingHigh = -1
			}
			if c < utf8.RuneSelf {
				i++
				continue
			}
			r, n := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && n == 1 {
				mark(i, false)
			}
			i += n
		}
	}
}

// endString files a finished string: as the key of an object expecting one,
// and as bad if it is.
func (s *scanner) endString(raw []byte, badAt int, badEscape bool) {
	top := s.top()
	isKey := top != nil && top.object && top.expectKey
	if isKey {
		if !top.hasKey {
			s.keyed++
		}
		top.key, top.hasKey, top.expectKey = raw, true, false
	}
	if badAt < 0 || s.badName != nil {
		return
	}
	name := s.onNamePath()
	if !name && s.bad != nil {
		return
	}
	b := &badString{path: s.path(), offset: badAt}
	if badEscape {
		b.surrogate = string(s.data[badAt : badAt+6])
	}
	if name {
		s.badName = b
	} else {
		s.bad = b
	}
}

// onNamePath reports whether the path of the string just read is one of
// s.names. It compares at most MaxJSONDepth keys, each against a short
// constant: bounded work whatever the input.
func (s *scanner) onNamePath() bool {
	for _, n := range s.names {
		if len(n) != s.keyed {
			continue
		}
		k := 0
		match := true
		for _, f := range s.stack {
			if !f.hasKey {
				continue
			}
			s.work++
			if !keyEquals(f.key, n[k]) {
				match = false
				break
			}
			k++
		}
		if match {
			return true
		}
	}
	return false
}

// path is the dotted path of the string just read, built once per reported
// string.
func (s *scanner) path() string {
	var parts []string
	for _, f := range s.stack {
		if f.hasKey {
			parts = append(parts, keyString(f.key))
		}
	}
	return strings.Join(parts, ".")
}

// keyEquals reports whether the raw key decodes to name, in time bounded by
// len(name) (an escape takes at most six bytes).
func keyEquals(raw []byte, name string) bool {
	if len(raw) > 6*len(name) {
		return false
	}
	return keyString(raw) == name
}

// keyString decodes a raw key as encoding/json would (escapes resolved,
// invalid UTF-8 replaced), without copying the common plain case.
func keyString(raw []byte) string {
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			var s string
			if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) == nil {
				return s
			}
			return string(raw)
		}
	}
	return string(raw)
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
