package sign

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxObjectName is the longest object name GCS and S3 accept, in bytes.
const MaxObjectName = 1024

// ValidateObject checks an object name against the rules GCS and S3 share:
// valid UTF-8, 1 to 1024 bytes, no carriage return or line feed, not "." or
// "..".
func ValidateObject(name string) error {
	switch {
	case name == "":
		return &InputError{Field: "object", Reason: "empty name"}
	case len(name) > MaxObjectName:
		return &InputError{Field: "object", Reason: "name is longer than 1024 bytes"}
	case !utf8.ValidString(name):
		return &InputError{Field: "object", Reason: "name is not valid UTF-8"}
	case strings.ContainsAny(name, "\r\n"):
		return &InputError{Field: "object", Reason: "name contains a carriage return or line feed"}
	case name == "." || name == "..":
		return &InputError{Field: "object", Reason: "name must not be . or .."}
	}
	return nil
}

// ValidateBucket checks a bucket name. GCS: 3-63 characters (up to 222 with
// dots, 63 per dot-separated part) of lower-case letters, digits, '-', '_'
// and '.', starting and ending with a letter or digit, not an IP address, not
// starting with "goog" nor containing "google". S3: 3-63 characters, no '_'.
func ValidateBucket(d Dialect, name string) error {
	bad := func(reason string) error {
		return &InputError{Field: "bucket", Reason: quote(name) + " " + reason}
	}
	if name == "" {
		return &InputError{Field: "bucket", Reason: "missing"}
	}
	maxLen := 63
	if d == GOOG4 && strings.Contains(name, ".") {
		maxLen = 222
	}
	if len(name) < 3 || len(name) > maxLen {
		return bad("must be 3 to 63 characters long (222 with dots)")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
		case c == '_' && d == GOOG4:
		default:
			return bad("may only contain lower-case letters, digits, '-', '.'" + map[bool]string{true: " and '_'", false: ""}[d == GOOG4])
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return bad("must start and end with a letter or digit")
	}
	for part := range strings.SplitSeq(name, ".") {
		if part == "" {
			return bad("must not contain '..'")
		}
		if len(part) > 63 {
			return bad("has a dot-separated part longer than 63 characters")
		}
	}
	if onlyDigitsAndDots(name) && isIP(name) {
		return bad("must not be an IP address")
	}
	if d == GOOG4 && (strings.HasPrefix(name, "goog") || strings.Contains(name, "google")) {
		return bad("must not start with \"goog\" or contain \"google\"")
	}
	return nil
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func validateHeader(h Header) error {
	name := strings.TrimSpace(h.Name)
	if name == "" {
		return &InputError{Field: "header", Reason: "empty header name"}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == ':' || c == ';' || c >= 0x7f { // ';' separates SignedHeaders
			return &InputError{Field: "header", Reason: "invalid character in header name " + quote(name)}
		}
	}
	if strings.ContainsAny(h.Value, "\r\n") {
		return &InputError{Field: "header", Reason: "line break in the value of " + quote(name)}
	}
	return nil
}

func onlyDigitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
