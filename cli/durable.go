package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/linkissuer/linkissuer/durable"
	"github.com/linkissuer/linkissuer/links"
)

// durableFlags are serve's durable-link flags.
type durableFlags struct {
	enabled   bool
	keys      string
	publicURL string
	maxTTL    time.Duration
	linkTTL   time.Duration
	// envErr is the first invalid environment default, naming its variable.
	envErr error
	loaded *durable.Keys
}

func (d *durableFlags) register(fs *flag.FlagSet, env Env) {
	if v := env.Getenv("LINKISSUER_DURABLE_LINKS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			d.envErr = fmt.Errorf("$LINKISSUER_DURABLE_LINKS: %q is not true or false", v)
		}
		d.enabled = b
	}
	d.maxTTL = d.envDuration(env, "LINKISSUER_DURABLE_MAX_TTL", durable.DefaultMaxTTL)
	d.linkTTL = d.envDuration(env, "LINKISSUER_DURABLE_LINK_TTL", durable.DefaultLinkTTL)
	fs.BoolVar(&d.enabled, "durable-links", d.enabled, "serve POST /v1/durable-links and GET /l/TOKEN [$LINKISSUER_DURABLE_LINKS]")
	fs.StringVar(&d.keys, "durable-keys", env.Getenv("LINKISSUER_DURABLE_KEYS"), `durable-link key file: JSON [{"id","secret" (base64, >= 32 bytes)}]; the first signs, all verify [$LINKISSUER_DURABLE_KEYS]`)
	fs.StringVar(&d.publicURL, "public-url", env.Getenv("LINKISSUER_PUBLIC_URL"), "https://HOST prefix of durable links (never taken from requests) [$LINKISSUER_PUBLIC_URL]")
	fs.DurationVar(&d.maxTTL, "durable-max-ttl", d.maxTTL, "longest durable-link lifetime accepted [$LINKISSUER_DURABLE_MAX_TTL]")
	fs.DurationVar(&d.linkTTL, "durable-link-ttl", d.linkTTL, "lifetime of the signed URL a click redirects to; reused for half of it [$LINKISSUER_DURABLE_LINK_TTL]")
}

func (d *durableFlags) envDuration(env Env, key string, def time.Duration) time.Duration {
	v := env.Getenv(key)
	if v == "" {
		return def
	}
	t, err := ParseDuration(v)
	if err != nil && d.envErr == nil {
		d.envErr = fmt.Errorf("$%s: %w", key, err)
	}
	if err != nil {
		return def
	}
	return t
}

// check reports invalid or missing configuration, and loads the key file,
// before anything starts.
func (d *durableFlags) check() error {
	if d.envErr != nil {
		return d.envErr
	}
	if !d.enabled {
		return nil
	}
	switch {
	case d.keys == "":
		return errors.New("--durable-links needs --durable-keys ($LINKISSUER_DURABLE_KEYS): the key file that authenticates tokens")
	case d.publicURL == "":
		return errors.New("--durable-links needs --public-url ($LINKISSUER_PUBLIC_URL): the https://HOST of durable links")
	}
	keys, err := durable.LoadKeys(d.keys)
	if err != nil {
		return fmt.Errorf("--durable-keys: %w", err)
	}
	d.loaded = keys
	return nil
}

// server builds the durable-link server over the service's link handler.
func (d *durableFlags) server(svc *service, auth durable.Authenticator) (*durable.Server, error) {
	issuer := &links.Sync{Links: svc.links}
	if svc.storage != nil {
		issuer.Objects = links.GCSObjects{Client: svc.storage}
	}
	srv, err := durable.New(durable.Options{Keys: d.loaded, Issuer: issuer, Audit: svc.links.Audit, Auth: auth,
		PublicURL: d.publicURL, MaxTTL: d.maxTTL, LinkTTL: d.linkTTL, Logger: svc.log})
	if err != nil {
		return nil, fmt.Errorf("durable links: %w", err)
	}
	return srv, nil
}
