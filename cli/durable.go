package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/durable"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/revocation"
)

// durableFlags are the durable-link flags: serve's (the API and the
// clicks) and the worker's (durable links in its event links), which
// share the keys, the public URL and the cap.
type durableFlags struct {
	enabled   bool
	keys      string
	publicURL string
	maxTTL    time.Duration
	linkTTL   time.Duration
	// ttl is the lifetime of the durable links the worker mints (0: the
	// cap).
	ttl time.Duration
	// revocations is the revocation list (gs://...), polled every
	// revInterval; clicks fail closed once it is older than revMaxAge.
	revocations string
	revInterval time.Duration
	revMaxAge   time.Duration
	poller      *revocation.Poller
	// keysRefresh is how often the keys are re-read (0: never);
	// smEndpoint overrides the Secret Manager API (no credentials then).
	keysRefresh time.Duration
	smEndpoint  string
	// envErr is the first invalid environment default, naming its variable.
	envErr error
	loaded *durable.Keys
}

// register adds serve's durable-link flags to fs.
func (d *durableFlags) register(fs *flag.FlagSet, env Env) {
	d.registerKeys(fs, env, "serve POST /v1/durable-links and GET /l/TOKEN")
	d.linkTTL = d.envDuration(env, "LINKISSUER_DURABLE_LINK_TTL", durable.DefaultLinkTTL)
	d.revInterval = d.envDuration(env, "LINKISSUER_REVOCATIONS_INTERVAL", revocation.DefaultInterval)
	d.revMaxAge = d.envDuration(env, "LINKISSUER_REVOCATIONS_MAX_AGE", revocation.DefaultMaxAge)
	fs.StringVar(&d.revocations, "revocations", env.Getenv("LINKISSUER_REVOCATIONS"), "durable-link revocation list, gs://BUCKET/OBJECT (made with linkissuer revoke --init); clicks answer 503 until it is read [$LINKISSUER_REVOCATIONS]")
	fs.DurationVar(&d.revInterval, "revocations-interval", d.revInterval, "how often every replica re-reads the revocation list: a revocation takes effect within it [$LINKISSUER_REVOCATIONS_INTERVAL]")
	fs.DurationVar(&d.revMaxAge, "revocations-max-age", d.revMaxAge, "staleness bound: when the last good read of the list is older, clicks answer 503 and /readyz is not ready [$LINKISSUER_REVOCATIONS_MAX_AGE]")
	fs.DurationVar(&d.linkTTL, "durable-link-ttl", d.linkTTL, "lifetime of the signed URL a click redirects to; reused for half of it [$LINKISSUER_DURABLE_LINK_TTL]")
}

// registerWorker adds the worker's durable-link flags to fs: serve's
// keys, public URL and cap, and the lifetime of the links it mints.
func (d *durableFlags) registerWorker(fs *flag.FlagSet, env Env) {
	d.registerKeys(fs, env, `every event's link.v1 message also carries a durable link to its object ("durable"), for serve --durable-links at --public-url to follow`)
	d.ttl = d.envDuration(env, "LINKISSUER_DURABLE_TTL", 0)
	fs.DurationVar(&d.ttl, "durable-ttl", d.ttl, "lifetime of the durable links the worker mints (0: --durable-max-ttl, which caps it) [$LINKISSUER_DURABLE_TTL]")
}

// registerKeys adds what minting and following durable links share:
// --durable-links (meaning what), the keys, the public URL and the cap.
func (d *durableFlags) registerKeys(fs *flag.FlagSet, env Env, what string) {
	if v := env.Getenv("LINKISSUER_DURABLE_LINKS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			d.envErr = fmt.Errorf("$LINKISSUER_DURABLE_LINKS: %q is not true or false", v)
		}
		d.enabled = b
	}
	d.maxTTL = d.envDuration(env, "LINKISSUER_DURABLE_MAX_TTL", durable.DefaultMaxTTL)
	fs.BoolVar(&d.enabled, "durable-links", d.enabled, what+" [$LINKISSUER_DURABLE_LINKS]")
	fs.StringVar(&d.keys, "durable-keys", env.Getenv("LINKISSUER_DURABLE_KEYS"), `durable-link keys: a key file or sm://projects/P/secrets/S[/versions/V] holding JSON [{"id","secret" (base64, >= 32 bytes)}]; the first signs, all verify [$LINKISSUER_DURABLE_KEYS]`)
	d.keysRefresh = d.envDuration(env, "LINKISSUER_DURABLE_KEYS_REFRESH", 5*time.Minute)
	d.smEndpoint = env.Getenv("LINKISSUER_SECRETMANAGER_ENDPOINT")
	fs.DurationVar(&d.keysRefresh, "durable-keys-refresh", d.keysRefresh, "how often the durable-link keys are re-read, so a rotation needs no restart (0: never) [$LINKISSUER_DURABLE_KEYS_REFRESH]")
	fs.StringVar(&d.publicURL, "public-url", env.Getenv("LINKISSUER_PUBLIC_URL"), "https://HOST prefix of durable links (never taken from requests) [$LINKISSUER_PUBLIC_URL]")
	fs.DurationVar(&d.maxTTL, "durable-max-ttl", d.maxTTL, "longest durable-link lifetime accepted [$LINKISSUER_DURABLE_MAX_TTL]")
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
		if d.revocations != "" {
			return errors.New("--revocations needs --durable-links ($LINKISSUER_DURABLE_LINKS): the list revokes durable links")
		}
		return nil
	}
	if d.revocations != "" {
		if _, _, err := revocation.ParseURL(d.revocations); err != nil {
			return fmt.Errorf("--revocations: %w", err)
		}
		if d.revMaxAge < 2*d.revInterval {
			return fmt.Errorf("--revocations-max-age %s is under two --revocations-interval (%s)", d.revMaxAge, d.revInterval)
		}
	}
	switch {
	case d.keys == "":
		return errors.New("--durable-links needs --durable-keys ($LINKISSUER_DURABLE_KEYS): the key file that authenticates tokens")
	case d.publicURL == "":
		return errors.New("--durable-links needs --public-url ($LINKISSUER_PUBLIC_URL): the https://HOST of durable links")
	}
	if d.keysRefresh < 0 {
		return fmt.Errorf("--durable-keys-refresh %s is negative", d.keysRefresh)
	}
	if d.ttl != 0 && (d.ttl < time.Minute || d.ttl > d.maxTTL) {
		return fmt.Errorf("--durable-ttl %s is outside 1m..%s (--durable-max-ttl)", d.ttl, d.maxTTL)
	}
	if strings.HasPrefix(d.keys, "sm://") {
		// Read when serve starts (it needs credentials and a context).
		if _, err := durable.ParseSecretURL(d.keys); err != nil {
			return fmt.Errorf("--durable-keys: %w", err)
		}
		return nil
	}
	keys, err := durable.LoadKeys(d.keys)
	if err != nil {
		return fmt.Errorf("--durable-keys: %w", err)
	}
	d.loaded = keys
	return nil
}

// server builds the durable-link server over the service's link handler
// and, with --revocations, starts the revocation poller, which stops with
// ctx.
func (d *durableFlags) server(ctx context.Context, env Env, svc *app.Service, auth durable.Authenticator) (*durable.Server, error) {
	issuer := &links.Sync{Links: svc.Links}
	if svc.Storage != nil {
		issuer.Objects = links.GCSObjects{Client: svc.Storage}
	}
	ring, err := d.keyRing(ctx, svc.Log)
	if err != nil {
		return nil, err
	}
	o := durable.Options{Ring: ring, Issuer: issuer, Audit: svc.Links.Audit, Auth: auth,
		PublicURL: d.publicURL, MaxTTL: d.maxTTL, LinkTTL: d.linkTTL, Logger: svc.Log, Tokens: tokenAuditor(svc)}
	if d.revocations != "" {
		p, err := d.startPoller(ctx, env, svc.Log)
		if err != nil {
			return nil, err
		}
		o.Revoked = p
	}
	srv, err := durable.New(o)
	if err != nil {
		return nil, fmt.Errorf("durable links: %w", err)
	}
	return srv, nil
}

// minter builds the worker's durable-link minter, recording with the
// service's audit recorder; the keys are refreshed until ctx is done.
func (d *durableFlags) minter(ctx context.Context, svc *app.Service) (*durable.Minter, error) {
	ring, err := d.keyRing(ctx, svc.Log)
	if err != nil {
		return nil, err
	}
	m, err := durable.NewMinter(durable.Options{Ring: ring, PublicURL: d.publicURL, TTL: d.ttl, MaxTTL: d.maxTTL,
		Tokens: tokenAuditor(svc), Logger: svc.Log})
	if err != nil {
		return nil, fmt.Errorf("durable links: %w", err)
	}
	return m, nil
}

// tokenAuditor is the service's audit recorder as the recorder of durable
// links' tokens, or nil when auditing is off.
func tokenAuditor(svc *app.Service) durable.TokenAuditor {
	if r, ok := svc.Links.Audit.(durable.TokenAuditor); ok {
		return r
	}
	return nil
}

// startPoller starts polling the revocation list until ctx is done.
func (d *durableFlags) startPoller(ctx context.Context, env Env, log *zap.Logger) (*revocation.Poller, error) {
	bucket, name, err := revocation.ParseURL(d.revocations)
	if err != nil {
		return nil, fmt.Errorf("--revocations: %w", err)
	}
	client, err := storageClient(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("--revocations: %w", err)
	}
	p, err := revocation.NewPoller(revocation.NewStore(client, bucket, name), revocation.PollerOptions{
		Interval: d.revInterval, MaxAge: d.revMaxAge, Logger: log.With(zap.String("revocations", d.revocations))})
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("--revocations: %w", err)
	}
	go func() {
		defer client.Close()
		p.Run(ctx)
	}()
	d.poller = p
	return p, nil
}

// ready adds the revocation list's freshness to base: a replica whose
// list is unread or stale refuses durable clicks, so it is not ready.
func (d *durableFlags) ready(base func() error) func() error {
	if d.poller == nil {
		return base
	}
	return func() error {
		if err := base(); err != nil {
			return err
		}
		return d.poller.Ready()
	}
}

// keyRing loads the keys (the key file was read by check; a secret is read
// now) and refreshes them every keysRefresh until ctx is done.
func (d *durableFlags) keyRing(ctx context.Context, log *zap.Logger) (*durable.KeyRing, error) {
	load := durable.FileKeys(d.keys)
	if strings.HasPrefix(d.keys, "sm://") {
		name, err := durable.ParseSecretURL(d.keys)
		if err != nil {
			return nil, fmt.Errorf("--durable-keys: %w", err)
		}
		sm := &durable.SecretManager{Endpoint: d.smEndpoint}
		if d.smEndpoint == "" {
			if sm.HTTP, _, err = htransport.NewClient(ctx, option.WithScopes("https://www.googleapis.com/auth/cloud-platform")); err != nil {
				return nil, fmt.Errorf("--durable-keys: secret manager client: %w", err)
			}
		}
		load = durable.SecretKeys(sm, name)
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if d.loaded, err = load(lctx); err != nil {
			return nil, fmt.Errorf("--durable-keys: %w", err)
		}
	}
	if d.loaded == nil {
		return nil, errors.New("--durable-keys: keys not loaded")
	}
	ring := durable.NewKeyRing(d.loaded)
	go ring.Refresh(ctx, load, d.keysRefresh, log.With(zap.String("durable_keys", d.keys)))
	return ring, nil
}
