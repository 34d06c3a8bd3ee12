package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
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
//
// It is written by the pieces URLSigner signs with: appendRequestHead, the
// canonical query, appendRequestTail.
func (c *CanonicalRequest) String() string {
	b := make([]byte, 0, 256+len(c.Path))
	b = appendRequestHead(b, c.Method, c.Path)
	b = appendQuery(b, c.Query)
	b = appendRequestTail(b, c.Headers, SignedHeaders(c.Headers), c.PayloadHash)
	return string(b)
}

// appendRequestHead appends "METHOD \n PATH \n", what precedes the
// canonical query in a canonical request.
func appendRequestHead(dst []byte, method, path string) []byte {
	dst = append(dst, method...)
	dst = append(dst, '\n')
	dst = append(dst, path...)
	return append(dst, '\n')
}

// appendRequestTail appends what follows the canonical query:
// "\n HEADERS \n \n SIGNED-HEADERS \n PAYLOAD-HASH".
func appendRequestTail(dst []byte, headers []Header, signed, payload string) []byte {
	dst = append(dst, '\n')
	for _, h := range headers {
		dst = append(dst, h.Name...)
		dst = append(dst, ':')
		dst = append(dst, h.Value...)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, signed...)
	dst = append(dst, '\n')
	return append(dst, payload...)
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
	return string(appendQuery(nil, params))
}

// span locates one escaped parameter in a scratch buffer.
type span struct{ name, value [2]int }

// Escaped parameters are collected in a scratch buffer, located by spans,
// so that nothing is allocated per parameter. The functions below take the
// scratch and spans and return them grown (plain slices, not a struct
// behind a pointer, so that the caller's backing arrays stay on its stack).

// queryPart is a piece of a parameter value: escaped already, or to escape.
type queryPart struct {
	s       string
	escaped bool
}

// addParam appends one parameter whose name is escaped already and whose
// escaped value is the concatenation of parts.
func addParam(scratch []byte, spans []span, escapedName string, parts ...queryPart) ([]byte, []span) {
	var sp span
	sp.name[0] = len(scratch)
	scratch = append(scratch, escapedName...)
	sp.name[1] = len(scratch)
	sp.value[0] = len(scratch)
	for _, p := range parts {
		if p.escaped {
			scratch = append(scratch, p.s...)
		} else {
			scratch = appendEscape(scratch, p.s, false)
		}
	}
	sp.value[1] = len(scratch)
	return scratch, append(spans, sp)
}

// addParams escapes and appends params, then sorts the spans from from on
// into canonical order.
func addParams(scratch []byte, spans []span, from int, params []Param) ([]byte, []span) {
	for _, p := range params {
		var sp span
		sp.name[0] = len(scratch)
		scratch = appendEscape(scratch, p.Name, false)
		sp.name[1] = len(scratch)
		sp.value[0] = len(scratch)
		scratch = appendEscape(scratch, p.Value, false)
		sp.value[1] = len(scratch)
		spans = append(spans, sp)
	}
	if len(spans)-from > 1 {
		slices.SortFunc(spans[from:], byNameValue(scratch))
	}
	return scratch, spans
}

// appendQuery appends the canonical query of params to dst.
func appendQuery(dst []byte, params []Param) []byte {
	var spansArr [16]span
	var scratchArr [512]byte
	scratch, spans := addParams(scratchArr[:0], spansArr[:0], 0, params)
	return mergeSpans(dst, scratch, spans, 0)
}

// mergeSpans appends the parameters of spans, two sorted runs [0, n) and
// [n, len), merged into canonical order and joined with '&'.
func mergeSpans(dst, scratch []byte, spans []span, n int) []byte {
	cmp := byNameValue(scratch)
	for i, j := 0, n; i < n || j < len(spans); {
		if i+j > n {
			dst = append(dst, '&')
		}
		var sp span
		if j == len(spans) || (i < n && cmp(spans[i], spans[j]) <= 0) {
			sp, i = spans[i], i+1
		} else {
			sp, j = spans[j], j+1
		}
		dst = append(dst, scratch[sp.name[0]:sp.name[1]]...)
		dst = append(dst, '=')
		dst = append(dst, scratch[sp.value[0]:sp.value[1]]...)
	}
	return dst
}

// byNameValue orders spans of scratch by escaped name, then escaped value:
// the canonical query's order.
func byNameValue(scratch []byte) func(a, b span) int {
	return func(a, b span) int {
		if c := bytes.Compare(scratch[a.name[0]:a.name[1]], scratch[b.name[0]:b.name[1]]); c != 0 {
			return c
		}
		return bytes.Compare(scratch[a.value[0]:a.value[1]], scratch[b.value[0]:b.value[1]])
	}
}

// CanonicalHeaders lower-cases names, trims values and folds runs of spaces
// and tabs into one space, merges repeated names with ',' (in the order
// given), and sorts by name.
func CanonicalHeaders(in []Header) []Header {
	return canonicalHeaders(make([]Header, 0, len(in)), in)
}

// canonicalHeaders appends the canonical form of in to out. out may be
// in[:0]: each input header yields at most one output, written at an index
// already read.
func canonicalHeaders(out, in []Header) []Header {
next:
	for _, h := range in {
		name := strings.ToLower(strings.TrimSpace(h.Name))
		value := foldSpace(h.Value)
		for i := range out { // few headers: a scan beats a map
			if out[i].Name == name {
				out[i].Value += "," + value
				continue next
			}
		}
		out = append(out, Header{name, value})
	}
	slices.SortStableFunc(out, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
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

// keep[1][c] reports whether byte c is written as is (keep[0]: '/' is
// escaped, keep[1]: it is kept).
var keep = func() (t [2][256]bool) {
	for c := 0; c < 256; c++ {
		t[0][c] = unreserved(byte(c), false)
		t[1][c] = unreserved(byte(c), true)
	}
	return t
}()

func appendEscape(dst []byte, s string, keepSlash bool) []byte {
	const hexDigits = "0123456789ABCDEF"
	tbl := &keep[0]
	if keepSlash {
		tbl = &keep[1]
	}
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && tbl[s[j]] {
			j++
		}
		dst = append(dst, s[i:j]...)
		if j == len(s) {
			break
		}
		c := s[j]
		dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		i = j + 1
	}
	return dst
}

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
