package sign

import (
	"net"
	"strings"
)

// Style is how the bucket appears in a signed URL.
type Style int

const (
	// PathStyle puts the bucket in the path: https://HOST/BUCKET/OBJECT.
	PathStyle Style = iota
	// VirtualHostedStyle puts the bucket in the host: https://BUCKET.HOST/OBJECT.
	VirtualHostedStyle
	// BucketBoundHostname uses a domain that maps to the bucket (a CNAME or a
	// load balancer): https://DOMAIN/OBJECT.
	BucketBoundHostname
)

// ParseStyle accepts "path", "virtual" (or "virtual-hosted") and "bound"
// (or "bucket-bound").
func ParseStyle(s string) (Style, error) {
	switch strings.ToLower(s) {
	case "", "path":
		return PathStyle, nil
	case "virtual", "virtual-hosted", "virtual_hosted_style":
		return VirtualHostedStyle, nil
	case "bound", "bucket-bound", "bucket_bound_hostname":
		return BucketBoundHostname, nil
	}
	return 0, &InputError{Field: "style", Reason: "must be path, virtual or bound, got " + quote(s)}
}

func (s Style) String() string {
	switch s {
	case VirtualHostedStyle:
		return "virtual"
	case BucketBoundHostname:
		return "bound"
	}
	return "path"
}

// Endpoint says where signed URLs point. The zero value means
// https://storage.googleapis.com (GOOG4) or the regional AWS S3 host (AWS4),
// path style.
//
// The host is chosen with the precedence the GCS conformance vectors define:
// Hostname, then ClientEndpoint, then EmulatorHost, then UniverseDomain, then
// the dialect's default.
type Endpoint struct {
	// Scheme is "https" (default) or "http". A scheme written into
	// ClientEndpoint or EmulatorHost wins over it.
	Scheme string
	// Hostname is an explicit host[:port].
	Hostname string
	// ClientEndpoint is a storage client's endpoint, [scheme://]host[:port].
	ClientEndpoint string
	// EmulatorHost is STORAGE_EMULATOR_HOST, [scheme://]host[:port]; http is
	// assumed when it names no scheme.
	EmulatorHost string
	// UniverseDomain replaces googleapis.com: storage.UNIVERSE_DOMAIN.
	UniverseDomain string
	// Style places the bucket.
	Style Style
	// BucketBoundHostname is the domain for the BucketBoundHostname style.
	BucketBoundHostname string
}

// Validate reports inconsistent endpoint settings. It does not modify e.
func (e *Endpoint) Validate() error {
	switch e.Scheme {
	case "", "http", "https":
	default:
		return &InputError{Field: "scheme", Reason: "must be http or https, got " + quote(e.Scheme)}
	}
	if strings.Contains(e.Hostname, "/") {
		return &InputError{Field: "hostname", Reason: "want host[:port] without a scheme or path, got " + quote(e.Hostname) + " (use the endpoint for scheme://host)"}
	}
	if e.Style == BucketBoundHostname && e.BucketBoundHostname == "" {
		return &InputError{Field: "hostname", Reason: "the bound style needs a bucket-bound hostname"}
	}
	if e.Style < PathStyle || e.Style > BucketBoundHostname {
		return &InputError{Field: "style", Reason: "unknown style"}
	}
	if host := e.explicitHost(); e.Style == VirtualHostedStyle && isIPHost(host) {
		return &InputError{Field: "style", Reason: "virtual-hosted style puts the bucket in the host name, and " + quote(host) +
			" is an IP address (BUCKET." + host + " names no host): use path style"}
	}
	return nil
}

// explicitHost is the host[:port] set by Hostname, ClientEndpoint or
// EmulatorHost, in resolve's precedence, or "" when the dialect's default
// (or the universe domain) applies.
func (e *Endpoint) explicitHost() string {
	switch {
	case e.Hostname != "":
		return e.Hostname
	case e.ClientEndpoint != "":
		_, h := splitEndpoint(e.ClientEndpoint, "")
		return h
	case e.EmulatorHost != "":
		_, h := splitEndpoint(e.EmulatorHost, "")
		return h
	}
	return ""
}

// isIPHost reports whether host[:port] is an IPv4 or IPv6 address, which
// cannot take a bucket as a subdomain.
func isIPHost(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return net.ParseIP(strings.Trim(h, "[]")) != nil
}

// target is an endpoint resolved for one dialect and region; only the bucket
// is still to be placed.
type target struct {
	scheme string
	host   string // host[:port] as written in the URL
	style  Style
	// stripPort: GOOG4 signs the host header without the port (the
	// conformance vectors' rule); AWS4 signs it as sent, dropping only the
	// scheme's default port.
	stripPort bool
	// signHost is host as signed (see signedHost), computed once.
	signHost string
}

func (e *Endpoint) resolve(d Dialect, region string) target {
	t := target{scheme: e.Scheme, style: e.Style, stripPort: d == GOOG4}
	if t.scheme == "" {
		t.scheme = "https"
	}
	switch {
	case e.Hostname != "":
		t.host = e.Hostname
	case e.ClientEndpoint != "":
		t.scheme, t.host = splitEndpoint(e.ClientEndpoint, t.scheme)
	case e.EmulatorHost != "":
		t.scheme, t.host = splitEndpoint(e.EmulatorHost, "http")
	case e.UniverseDomain != "":
		t.host = "storage." + e.UniverseDomain
	case d == AWS4:
		t.host = awsHost(region)
	default:
		t.host = "storage.googleapis.com"
	}
	if e.Style == BucketBoundHostname {
		t.scheme, t.host = splitEndpoint(e.BucketBoundHostname, t.scheme)
	}
	t.signHost = signedHost(t.host, t.scheme, t.stripPort)
	return t
}

// place returns the URL host, the host to sign, and the path prefix for bucket.
func (t *target) place(bucket string) (urlHost, signHost, pathPrefix string) {
	urlHost, signHost = t.hosts(bucket)
	if t.style == PathStyle {
		pathPrefix = "/" + EscapePath(bucket)
	}
	return urlHost, signHost, pathPrefix
}

// hosts returns the URL host and the host to sign for bucket.
func (t *target) hosts(bucket string) (urlHost, signHost string) {
	if t.style != VirtualHostedStyle {
		return t.host, t.signHost
	}
	urlHost = bucket + "." + t.host
	if strings.HasPrefix(t.host, t.signHost) { // the port is a suffix: share the string
		return urlHost, urlHost[:len(bucket)+1+len(t.signHost)]
	}
	return urlHost, bucket + "." + t.signHost
}

func signedHost(host, scheme string, stripPort bool) string {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return host
	}
	if stripPort || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return h
	}
	return host
}

// splitEndpoint splits "scheme://host[:port][/...]" or "host[:port]".
func splitEndpoint(endpoint, defaultScheme string) (scheme, host string) {
	scheme = defaultScheme
	if i := strings.Index(endpoint, "://"); i >= 0 {
		scheme, endpoint = strings.ToLower(endpoint[:i]), endpoint[i+3:]
	}
	if i := strings.IndexByte(endpoint, '/'); i >= 0 {
		endpoint = endpoint[:i]
	}
	return scheme, endpoint
}

func awsHost(region string) string {
	if region == "" || region == "us-east-1" {
		return "s3.amazonaws.com"
	}
	return "s3." + region + ".amazonaws.com"
}
