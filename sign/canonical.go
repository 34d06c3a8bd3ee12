package sign

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// This file holds the pure V4 canonicalization steps shared by every
// algorithm and by verification. Nothing here signs, reads a clock or
// allocates more than the strings it returns.

// UnsignedPayload is the payload hash of a presigned URL whose body is not
// signed.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// Param is one query parameter, unescaped.
type Param struct{ Name, Value string }

// Header is one canonical header: lower-case name, trimmed value.
type Header struct{ Name, Value string }

// CanonicalRequest is the input of the V4 canonicalization: everything that
// the signature covers, in unescaped form.
type CanonicalRequest struct {
	Method string
	// Path is the escaped request path ("/bucket/object" or "/object").
	Path string
	// Query holds every query parameter, the signing ones included, except
	// the signature itself. Order does not matter.
	Query []Param
	// Headers are canonical headers (see CanonicalHeaders), sorted by name.
	Headers []Header
	// PayloadHash is UNSIGNED-PAYLOAD or the hex SHA-256 of the body.
	PayloadHash string
}

// String renders the canonical request:
//
//	METHOD \n PATH \n QUERY \n HEADERS \n \n SIGNED-HEADERS \n PAYLOAD-HASH
func (c *CanonicalRequest) String() string {
	var b strings.Builder
	b.Grow(256 + len(c.Path))
	b.WriteString(c.Method)
	b.WriteByte('\n')
	b.WriteString(c.Path)
	b.WriteByte('\n')
	b.WriteString(CanonicalQuery(c.Query))
	b.WriteByte('\n')
	for _, h := range c.Headers {
		b.WriteString(h.Name)
		b.WriteByte(':')
		b.WriteString(h.Value)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(SignedHeaders(c.Headers))
	b.WriteByte('\n')
	b.WriteString(c.PayloadHash)
	return b.String()
}

// StringToSign renders the V4 string-to-sign for a canonical request:
//
//	ALGORITHM \n TIMESTAMP \n SCOPE \n hex(SHA256(canonical request))
func StringToSign(algorithm, timestamp string, scope Scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	var b strings.Builder
	b.Grow(len(algorithm) + len(timestamp) + 64 + 64 + 3)
	b.WriteString(algorithm)
	b.WriteByte('\n')
	b.WriteString(timestamp)
	b.WriteByte('\n')
	b.WriteString(scope.String())
	b.WriteByte('\n')
	var hexSum [64]byte
	hex.Encode(hexSum[:], sum[:])
	b.Write(hexSum[:])
	return b.String()
}

// CanonicalQuery escapes every name and value (RFC 3986, see Escape), sorts
// by escaped name then escaped value, and joins them with '&'.
func CanonicalQuery(params []Param) string {
	if len(params) == 0 {
		return ""
	}
	escaped := make([]Param, len(params))
	n := 0
	for i, p := range params {
		escaped[i] = Param{Escape(p.Name), Escape(p.Value)}
		n += len(escaped[i].Name) + len(escaped[i].Value) + 2
	}
	sort.Slice(escaped, func(i, j int) bool {
		if escaped[i].Name != escaped[j].Name {
			return escaped[i].Name < escaped[j].Name
		}
		return escaped[i].Value < escaped[j].Value
	})
	var b strings.Builder
	b.Grow(n)
	for i, p := range escaped {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.Name)
		b.WriteByte('=')
		b.WriteString(p.Value)
	}
	return b.String()
}

// CanonicalHeaders lower-cases names, trims values and folds runs of spaces
// and tabs into one space, merges repeated names with ',' (in the order
// given), and sorts by name.
func CanonicalHeaders(in []Header) []Header {
	out := make([]Header, 0, len(in))
	index := make(map[string]int, len(in))
	for _, h := range in {
		name := strings.ToLower(strings.TrimSpace(h.Name))
		value := foldSpace(h.Value)
		if i, ok := index[name]; ok {
			out[i].Value += "," + value
			continue
		}
		index[name] = len(out)
		out = append(out, Header{name, value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SignedHeaders joins the names of canonical headers with ';'.
func SignedHeaders(headers []Header) string {
	var b strings.Builder
	for i, h := range headers {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(h.Name)
	}
	return b.String()
}

// foldSpace trims leading and trailing whitespace and replaces each inner
// run of spaces, tabs and line breaks with a single space.
func foldSpace(s string) string {
	s = strings.Trim(s, " \t\r\n")
	if !strings.ContainsAny(s, "\t\r\n") && !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Escape percent-encodes s per RFC 3986: every byte except the unreserved
// set A-Z a-z 0-9 - . _ ~ becomes %XX with upper-case hex.
func Escape(s string) string { return escape(s, false) }

// EscapePath is Escape that keeps '/' as is: the V4 rule for object paths.
func EscapePath(s string) string { return escape(s, true) }

func escape(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i], keepSlash) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	buf := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c, keepSlash) {
			buf = append(buf, c)
			continue
		}
		buf = append(buf, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(buf)
}

func unreserved(c byte, keepSlash bool) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	case c == '-' || c == '.' || c == '_' || c == '~':
		return true
	case c == '/':
		return keepSlash
	}
	return false
}
