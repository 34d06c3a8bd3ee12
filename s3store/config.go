package s3store

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/linkissuer/linkissuer/sign"
)

// Config says where an S3-compatible store is and which HMAC key to use.
// The zero Style picks the store's usual addressing: virtual-hosted for AWS
// itself, path style for any other endpoint (MinIO, localstack and most
// gateways have no wildcard DNS).
type Config struct {
	// Endpoint is [scheme://]host[:port] of an S3-compatible service, e.g.
	// http://127.0.0.1:9000, https://gateway.storjshare.io,
	// https://ACCOUNT.r2.cloudflarestorage.com or
	// https://storage.googleapis.com. Empty means AWS S3 in Region. The
	// scheme defaults to https.
	Endpoint string
	// Region is the region in the credential scope and of the client. AWS
	// needs the bucket's region; MinIO and localstack use their configured
	// one (us-east-1 by default); R2 and the GCS XML API accept us-east-1.
	Region string
	// Style is "path", "virtual" or "" (the store's usual addressing).
	Style string
	// Key is the HMAC key (an S3 access key, or a GCS HMAC key in
	// interoperability mode).
	Key HMACKey
}

// Validate reports an unusable configuration. It does not modify c.
func (c *Config) Validate() error {
	if c.Region == "" {
		return &sign.InputError{Field: "region", Reason: "S3-compatible stores need a region (e.g. us-east-1)"}
	}
	if c.Region == "auto" {
		return &sign.InputError{Field: "region", Reason: `"auto" is not an S3 region; R2 and the GCS XML API accept us-east-1 as its alias`}
	}
	if _, err := c.baseURL(); err != nil {
		return err
	}
	style, err := sign.ParseStyle(c.Style)
	if err != nil {
		return err
	}
	if style == sign.BucketBoundHostname {
		return &sign.InputError{Field: "style", Reason: "S3-compatible stores take path or virtual"}
	}
	if c.Key.AccessID == "" || c.Key.Secret == "" {
		return &sign.InputError{Field: "hmac", Reason: "an access ID and a secret are both needed"}
	}
	return nil
}

// style resolves the addressing style; c must be valid.
func (c *Config) style() sign.Style {
	if c.Style == "" {
		if c.Endpoint == "" {
			return sign.VirtualHostedStyle
		}
		return sign.PathStyle
	}
	s, _ := sign.ParseStyle(c.Style) // checked by Validate
	return s
}

// baseURL is the endpoint as a URL with a scheme and a host, nil for AWS.
func (c *Config) baseURL() (*url.URL, error) {
	if c.Endpoint == "" {
		return nil, nil
	}
	raw := c.Endpoint
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	bad := err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil
	if bad {
		return nil, &sign.InputError{Field: "endpoint", Reason: "want [http[s]://]host[:port] without a path, got " + fmt.Sprintf("%q", c.Endpoint)}
	}
	u.Path = ""
	return u, nil
}

// SignOptions are the sign.Options that make URLs for this store: AWS4,
// c.Region, the endpoint's host and the resolved style.
func (c *Config) SignOptions() (*sign.Options, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o := &sign.Options{Dialect: sign.AWS4, Region: c.Region, Endpoint: sign.Endpoint{Style: c.style()}}
	if u, _ := c.baseURL(); u != nil {
		o.Endpoint.Scheme = u.Scheme
		o.Endpoint.Hostname = u.Host
	}
	return o, o.Validate()
}

// URLSigner returns a URLSigner for presigned GET, PUT and POST-policy
// uploads to this store, signing with c.Key.
func (c *Config) URLSigner() (*sign.URLSigner, error) {
	opts, err := c.SignOptions()
	if err != nil {
		return nil, err
	}
	hs, err := sign.NewHMACSigner(c.Key.AccessID, c.Key.Secret)
	if err != nil {
		return nil, err
	}
	return sign.New(hs, opts)
}

// HMACKey is an access ID and its secret. Its String and GoString methods
// hide the secret, so that a logged Config does not leak it.
type HMACKey struct {
	AccessID string
	Secret   string
}

// String shows the access ID only.
func (k HMACKey) String() string { return "HMACKey{" + k.AccessID + " secret:REDACTED}" }

// GoString shows the access ID only.
func (k HMACKey) GoString() string { return k.String() }

// ReadKey returns the key accessID with its secret: secretFile's contents
// (trimmed) when it is set, else secret. The secret never comes from a
// command-line value (which would show in process listings and shell
// history): callers take it from a file or a variable. Errors never show
// the secret.
func ReadKey(accessID, secretFile, secret string) (HMACKey, error) {
	if accessID == "" {
		return HMACKey{}, &sign.InputError{Field: "hmac", Reason: "a secret is configured but no access ID"}
	}
	if secretFile != "" {
		data, err := os.ReadFile(secretFile)
		if err != nil {
			return HMACKey{}, fmt.Errorf("reading the HMAC secret: %w", err)
		}
		secret = strings.TrimSpace(string(data))
		if secret == "" {
			return HMACKey{}, &sign.InputError{Field: "hmac", Reason: "secret file " + secretFile + " is empty"}
		}
	}
	if secret == "" {
		return HMACKey{}, &sign.InputError{Field: "hmac", Reason: "access ID " + accessID + " has no secret"}
	}
	return HMACKey{AccessID: accessID, Secret: secret}, nil
}
