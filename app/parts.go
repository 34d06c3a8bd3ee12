package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/linkcache"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// Policy compiles the policy settings.
func Policy(c *config.Policy) (*policy.Policy, error) {
	pc := policy.Config{
		Allow:             config.Split(c.Allow),
		Methods:           config.Split(c.Methods),
		DefaultExpiry:     c.DefaultExpiry,
		MaxExpiry:         c.MaxExpiry,
		ContentTypes:      config.Split(c.ContentTypes),
		AllowControlChars: c.AllowControlChars,
		AllowDotSegments:  c.AllowDotSegments,
	}
	for _, p := range c.ResponseParams {
		name, value, ok := strings.Cut(p, "=")
		if !ok || !strings.HasPrefix(name, "response-") {
			return nil, fmt.Errorf("--response-param %q: want response-NAME=value", p)
		}
		pc.ResponseParams = append(pc.ResponseParams, sign.Param{Name: name, Value: value})
	}
	if len(pc.Allow) == 0 {
		return nil, fmt.Errorf("--allow is empty: name the buckets (and prefixes) that may be signed")
	}
	return policy.New(pc)
}

// SignOptions builds the GOOG4 URL options.
func SignOptions(u *config.URL) (*sign.Options, error) {
	style, err := sign.ParseStyle(u.Style)
	if err != nil {
		return nil, err
	}
	o := &sign.Options{
		Dialect:          sign.GOOG4,
		Region:           u.Region,
		AllowLongKeyless: u.AllowLongKeyless,
		Endpoint: sign.Endpoint{
			Scheme:         u.Scheme,
			Style:          style,
			ClientEndpoint: u.Endpoint,
			EmulatorHost:   u.EmulatorHost,
			UniverseDomain: u.UniverseDomain,
		},
	}
	if style == sign.BucketBoundHostname {
		o.Endpoint.BucketBoundHostname = u.Hostname
	} else {
		o.Endpoint.Hostname = u.Hostname
	}
	return o, o.Validate()
}

// StorageClient is a Cloud Storage client: for the emulator at
// emulatorHost (host[:port] or a URL, unauthenticated), or for Cloud
// Storage with the ambient credentials when it is empty.
func StorageClient(ctx context.Context, emulatorHost string) (*storage.Client, error) {
	if emulatorHost == "" {
		return storage.NewClient(ctx)
	}
	host := emulatorHost
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	return storage.NewClient(ctx, option.WithEndpoint(strings.TrimSuffix(host, "/")+"/storage/v1/"), option.WithoutAuthentication())
}

// LinkSigner returns urls behind the link cache, or urls itself if the
// cache is off.
func LinkSigner(c *config.LinkCache, urls *sign.URLSigner) (links.Signer, error) {
	if c.Window == 0 {
		return urls, nil
	}
	lc, err := linkcache.New(urls, urls.MaxExpiry(), &linkcache.Options{Window: c.Window, Size: c.Size})
	if err != nil {
		return nil, fmt.Errorf("--link-cache-window/--link-cache-size [LINKISSUER_LINK_CACHE_WINDOW, LINKISSUER_LINK_CACHE_SIZE]: %w", err)
	}
	return lc, nil
}

// observedSigner reports each remote signature's outcome to /readyz as
// component "signer".
type observedSigner struct {
	sign.Signer
	health worker.HealthObserver
}

func (o observedSigner) Sign(ctx context.Context, scope sign.Scope, stringToSign []byte) ([]byte, error) {
	sig, err := o.Signer.Sign(ctx, scope, stringToSign)
	o.health.Observe("signer", err)
	return sig, err
}

// manifestPolicy is the policy of manifest locations: rules, with the
// links' lifetime bounds.
func manifestPolicy(rules string, pol *policy.Policy) (*policy.Policy, error) {
	return policy.New(policy.Config{Allow: config.Split(rules), MaxExpiry: pol.MaxExpiry(), DefaultExpiry: min(15*time.Minute, pol.MaxExpiry())})
}
