package config

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/linkissuer/linkissuer/fleet/gcsfleet"
	"github.com/linkissuer/linkissuer/linkcache"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

var (
	envProject = []string{"LINKISSUER_PROJECT", "GOOGLE_CLOUD_PROJECT"}
	envNone    []string
)

func env(names ...string) []string { return names }

// Credentials choose the signer: a key file, an HMAC key, or keyless
// signing through IAM signBlob.
type Credentials struct {
	KeyFile        string
	Email          string
	HMACAccessID   string
	HMACSecretFile string
	// HMACSecret is $LINKISSUER_HMAC_SECRET; it has no flag.
	HMACSecret string
	Keyless    Keyless
}

// Register adds the credential flags to fs.
func (c *Credentials) Register(fs *flag.FlagSet, getenv Getenv) {
	b := binder{fs, getenv}
	b.str(&c.KeyFile, "key-file", env("LINKISSUER_KEY_FILE"), "", "service-account key file (JSON or PEM) for GOOG4-RSA-SHA256")
	b.str(&c.Email, "email", env("LINKISSUER_KEY_EMAIL"), "", "service-account email for a PEM key file (JSON files carry their own)")
	b.str(&c.HMACAccessID, "hmac-access-id", env("LINKISSUER_HMAC_ACCESS_ID"), "", "HMAC access ID; the secret comes from --hmac-secret-file or $LINKISSUER_HMAC_SECRET")
	b.str(&c.HMACSecretFile, "hmac-secret-file", env("LINKISSUER_HMAC_SECRET_FILE"), "", "file holding the HMAC secret")
	c.HMACSecret = getenv("LINKISSUER_HMAC_SECRET")
	c.Keyless.Register(fs, getenv)
}

// Keyless selects signing through IAM Credentials signBlob, run by the
// batching engine (bounded concurrency, a rate that adapts to the quota,
// retries with backoff).
type Keyless struct {
	ServiceAccount string
	// Enabled is --keyless: sign as the ambient service account.
	Enabled     bool
	Delegates   []string
	IAMEndpoint string
	// InFlight is the engine's MaxInFlight; 0 is its default.
	InFlight int
	// Ceiling caps signBlob calls per second; 0 is no cap.
	Ceiling float64
	// Quota is the project's signBlob quota, calls per minute, when it
	// is known; 0: found from the 429s.
	Quota float64
	// CredentialsFile ($GOOGLE_APPLICATION_CREDENTIALS) and
	// GcloudConfigDir ($CLOUDSDK_CONFIG, else gcloud's default directory)
	// are where the signing account is looked for when none is named.
	// They have no flags.
	CredentialsFile string
	GcloudConfigDir string
	// Fleet is --quota-fleet: replicas sharing the quota see each other.
	// Only the commands that sign in bulk register it (RegisterFleet).
	Fleet QuotaFleet
}

// QuotaFleet is where the replicas that share one signBlob quota publish
// their numbers and read each other's (package fleet): a GCS prefix,
// gs://BUCKET/PREFIX. Each replica then keeps to its fair share of the
// quota the fleet found together. Empty: none, each replica finds the
// quota alone.
type QuotaFleet struct {
	URL string
	// EmulatorHost is $STORAGE_EMULATOR_HOST: the prefix is on a Cloud
	// Storage emulator. It has no flag.
	EmulatorHost string
}

// RegisterFleet adds --quota-fleet to fs: sign, worker, serve and export
// have it.
func (k *Keyless) RegisterFleet(fs *flag.FlagSet, getenv Getenv) {
	b := binder{fs, getenv}
	b.str(&k.Fleet.URL, "quota-fleet", env("LINKISSUER_QUOTA_FLEET"), "", "keyless: gs://BUCKET/PREFIX where replicas sharing the signBlob quota publish their rates (one small object each) and keep to fair shares (default none: each finds the quota alone)")
	k.Fleet.EmulatorHost = getenv("STORAGE_EMULATOR_HOST")
}

// Register adds the keyless flags to fs.
func (k *Keyless) Register(fs *flag.FlagSet, getenv Getenv) {
	b := binder{fs, getenv}
	b.str(&k.ServiceAccount, "service-account", env("LINKISSUER_SERVICE_ACCOUNT"), "", "sign keyless as this service account through IAM signBlob (found from the metadata server or ADC when --keyless is given alone)")
	b.bool(&k.Enabled, "keyless", env("LINKISSUER_KEYLESS"), false, "sign keyless through IAM signBlob as the ambient service account")
	b.fs.Var((*List)(&k.Delegates), "delegate", "service account in the impersonation chain (repeatable)")
	b.str(&k.IAMEndpoint, "iam-endpoint", env("LINKISSUER_IAM_ENDPOINT"), "", "IAM Credentials endpoint, e.g. the emulator's http://127.0.0.1:PORT")
	b.int(&k.InFlight, "sign-in-flight", env("LINKISSUER_SIGN_IN_FLIGHT"), 0, "keyless: signBlob calls in flight (default 64)")
	b.float(&k.Ceiling, "sign-rate-ceiling", env("LINKISSUER_SIGN_RATE_CEILING"), 0, "keyless: cap on signBlob calls per second (default none: the rate adapts to the quota)")
	b.float(&k.Quota, "sign-quota", env("LINKISSUER_SIGN_QUOTA"), 0, "keyless: the project's signBlob quota in calls per minute, if known (Google's default is 60,000; the console lists it under the IAM Service Account Credentials API): replicas with --quota-fleet split 97% of it from their first call, a lone replica paces at 97% of it; 429s still cut the rate (default: unknown, found from the 429s)")
	k.CredentialsFile = getenv("GOOGLE_APPLICATION_CREDENTIALS")
	k.GcloudConfigDir = gcloudConfigDir(getenv, runtime.GOOS)
}

// gcloudConfigDir is where gcloud keeps its configuration (and `gcloud
// auth application-default login` its credentials), or "".
func gcloudConfigDir(getenv Getenv, goos string) string {
	if dir := getenv("CLOUDSDK_CONFIG"); dir != "" {
		return dir
	}
	if goos == "windows" {
		if dir := getenv("APPDATA"); dir != "" {
			return filepath.Join(dir, "gcloud")
		}
		return ""
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "gcloud")
	}
	return ""
}

// Requested says a keyless flag was given.
func (k *Keyless) Requested() bool {
	return k.ServiceAccount != "" || k.Enabled || k.IAMEndpoint != ""
}

// Check reports what Validate would about the keyless flags alone, for
// commands that take no other configuration.
func (k *Keyless) Check() error {
	v := &validator{settings: keylessSettings()}
	k.validate(v)
	return v.err()
}

func (k *Keyless) validate(v *validator) {
	v.check(k.InFlight >= 0, "sign-in-flight", "must not be negative (0 is the default, 64), got %d", k.InFlight)
	v.check(k.Ceiling >= 0, "sign-rate-ceiling", "must not be negative (0 is no cap), got %g", k.Ceiling)
	v.check(k.Quota >= 0, "sign-quota", "must not be negative (0 is unknown), got %g", k.Quota)
	if k.Fleet.URL != "" {
		_, _, err := gcsfleet.ParseURL(k.Fleet.URL)
		v.check(err == nil, "quota-fleet", "%v", err)
	}
}

// Check reports what Validate would about the credential flags alone, for
// commands whose other flags are not in this package.
func (c *Credentials) Check() error {
	v := &validator{settings: credSettings()}
	c.validate(v)
	return v.err()
}

// validate checks that exactly one signer is chosen and that it is whole.
// A missing HMAC secret file is found when the builder reads it.
func (c *Credentials) validate(v *validator) {
	chosen := 0
	for _, set := range []bool{c.HMACAccessID != "", c.KeyFile != "", c.Keyless.Requested()} {
		if set {
			chosen++
		}
	}
	switch {
	case chosen > 1:
		v.add(errors.New("choose one of --hmac-access-id, --key-file and --service-account"))
	case chosen == 0:
		v.add(errors.New("no credentials: give --key-file, --hmac-access-id, or --service-account/--keyless for IAM signBlob"))
	case c.HMACAccessID != "" && c.HMACSecretFile == "" && c.HMACSecret == "":
		v.add(errors.New("--hmac-access-id needs the secret in --hmac-secret-file or $LINKISSUER_HMAC_SECRET"))
	}
	v.check(c.Keyless.Fleet.URL == "" || c.Keyless.Requested(), "quota-fleet", "is for keyless signing (--service-account or --keyless): a key file or an HMAC key makes no signBlob calls")
	v.check(c.Keyless.Quota == 0 || c.Keyless.Requested(), "sign-quota", "is for keyless signing (--service-account or --keyless): a key file or an HMAC key makes no signBlob calls")
	c.Keyless.validate(v)
}

// URL is the shape of the links: where they point and the credential
// scope's region.
type URL struct {
	Style          string
	Hostname       string
	Endpoint       string
	Scheme         string
	Region         string
	UniverseDomain string
	// AllowLongKeyless lifts the 12h cap on keyless URLs.
	AllowLongKeyless bool
	// EmulatorHost is $STORAGE_EMULATOR_HOST: links, listing and manifests
	// go to a Cloud Storage emulator. It has no flag.
	EmulatorHost string
}

func registerUniverseDomain(b binder, p *string) {
	b.str(p, "universe-domain", env("GOOGLE_CLOUD_UNIVERSE_DOMAIN"), "", "Google Cloud universe domain: gs:// links point at storage.DOMAIN (default googleapis.com)")
}

// register adds the URL flags of worker and serve, each with a variable.
func (u *URL) register(b binder) {
	b.str(&u.Style, "style", env("LINKISSUER_STYLE"), "path", "URL style: path, virtual or bound")
	b.str(&u.Hostname, "hostname", env("LINKISSUER_HOSTNAME"), "", "explicit URL host, or the bucket-bound domain")
	b.str(&u.Endpoint, "endpoint", env("LINKISSUER_ENDPOINT"), "", "storage endpoint for the URLs, [scheme://]host[:port]")
	b.str(&u.Scheme, "scheme", env("LINKISSUER_SCHEME"), "https", "http or https")
	b.str(&u.Region, "region", env("LINKISSUER_REGION"), "auto", "credential-scope region")
	registerUniverseDomain(b, &u.UniverseDomain)
	b.bool(&u.AllowLongKeyless, "allow-long-keyless", envNone, false, "allow keyless URLs beyond 12h")
	u.EmulatorHost = b.getenv("STORAGE_EMULATOR_HOST")
}

func (u *URL) validate(v *validator) {
	if _, err := sign.ParseStyle(u.Style); err != nil {
		v.fail("style", "want path, virtual or bound, got %q", u.Style)
	}
}

// Policy says what may be signed.
type Policy struct {
	Allow             string
	Methods           string
	DefaultExpiry     time.Duration
	MaxExpiry         time.Duration
	ContentTypes      string
	ResponseParams    []string
	AllowDotSegments  bool
	AllowControlChars bool
}

func (p *Policy) register(b binder) {
	b.str(&p.Allow, "allow", env("LINKISSUER_ALLOW"), "", "comma-separated BUCKET or BUCKET/GLOB rules that may be signed ('*' one segment, '**' any)")
	b.str(&p.Methods, "methods", env("LINKISSUER_METHODS"), "GET", "comma-separated methods that may be signed")
	b.dur(&p.DefaultExpiry, "default-expiry", env("LINKISSUER_DEFAULT_EXPIRY"), 15*time.Minute, "lifetime when a request names none")
	b.dur(&p.MaxExpiry, "max-expiry", env("LINKISSUER_MAX_EXPIRY"), time.Hour, "longest lifetime granted")
	b.str(&p.ContentTypes, "content-types", env("LINKISSUER_CONTENT_TYPES"), "", "comma-separated content-type globs to sign (empty: any)")
	b.list(&p.ResponseParams, "response-param", env("LINKISSUER_RESPONSE_PARAMS"), "query parameter added to every URL, e.g. response-content-disposition=attachment (repeatable; the variable is comma-separated)")
	b.bool(&p.AllowControlChars, "allow-control-chars", envNone, false, "sign object names that contain control characters")
	b.bool(&p.AllowDotSegments, "allow-dot-segments", envNone, false, "sign object names with a . or .. segment (public/../private/x), which path-normalizing clients read as another object")
}

func (p *Policy) validate(v *validator) {
	v.check(len(splitList(p.Allow)) > 0, "allow", "is empty: name the buckets (and prefixes) that may be signed")
	v.check(p.DefaultExpiry > 0, "default-expiry", "must be > 0, got %s", p.DefaultExpiry)
	v.check(p.MaxExpiry > 0, "max-expiry", "must be > 0, got %s", p.MaxExpiry)
	for _, rp := range p.ResponseParams {
		name, _, ok := strings.Cut(rp, "=")
		v.check(ok && strings.HasPrefix(name, "response-"), "response-param", "%q: want response-NAME=value", rp)
	}
}

// Jobs configures bulk export jobs (linkissuer.job.v1) in worker and serve.
type Jobs struct {
	// Enabled says job messages can arrive: a storage client is then
	// required at start.
	Enabled bool
	// Topic is where job shards are published back to.
	Topic         string
	State         string
	Concurrency   int
	ManifestAllow string
	Topics        string
	SplitAbove    int
	ShardSize     int
}

func (j *Jobs) register(b binder) {
	b.bool(&j.Enabled, "jobs", env("LINKISSUER_JOBS"), true, "run job messages (linkissuer.job.v1); needs a Cloud Storage client at start. false: job messages are dead-lettered")
	b.str(&j.Topic, "jobs-topic", env("LINKISSUER_JOBS_TOPIC"), "", "topic that job shards are published back to")
	b.str(&j.State, "jobs-state", env("LINKISSUER_JOBS_STATE"), "", "gs://BUCKET/PREFIX holding topic-output jobs' markers and error rows")
	b.int(&j.Concurrency, "jobs-concurrency", env("LINKISSUER_JOBS_CONCURRENCY"), 0, "objects in flight per job (default 2 x --sign-in-flight keyless, else the jobs package's)")
	b.str(&j.ManifestAllow, "jobs-manifest-allow", env("LINKISSUER_JOBS_MANIFEST_ALLOW"), "", "comma-separated rules for where manifests may be written (default --allow)")
	b.str(&j.Topics, "jobs-topics", env("LINKISSUER_JOBS_TOPICS"), "", "comma-separated projects, or full topic names, that jobs may name as notify_topic or output.topic (default --project)")
	b.int(&j.SplitAbove, "jobs-split-above", env("LINKISSUER_JOBS_SPLIT_ABOVE"), 0, "with --jobs-topic, jobs above this many objects are split into shards (0: the jobs package's default, 20000)")
	b.int(&j.ShardSize, "jobs-shard-size", env("LINKISSUER_JOBS_SHARD_SIZE"), 0, "objects per shard (0: the jobs package's default, 10000)")
}

func (j *Jobs) validate(v *validator) {
	v.check(j.Concurrency >= 0, "jobs-concurrency", "must not be negative, got %d", j.Concurrency)
	v.check(j.SplitAbove >= 0, "jobs-split-above", "must not be negative, got %d", j.SplitAbove)
	v.check(j.ShardSize >= 0, "jobs-shard-size", "must not be negative, got %d", j.ShardSize)
}

// S3 is the one S3-compatible store that serves jobs whose source is s3,
// and their s3:// manifests. An empty Region means none.
type S3 struct {
	Region     string
	Endpoint   string
	Style      string
	AccessID   string
	SecretFile string
	// Secret is $LINKISSUER_S3_SECRET, else $AWS_SECRET_ACCESS_KEY when
	// neither the access ID nor a secret is configured and the AWS pair is;
	// it has no flag.
	Secret string
}

func (s *S3) register(b binder) {
	b.str(&s.Region, "s3-region", env("LINKISSUER_S3_REGION"), "", "region of the S3-compatible store that serves s3 job sources and s3:// manifests (empty: no S3 store)")
	b.str(&s.Endpoint, "s3-endpoint", env("LINKISSUER_S3_ENDPOINT"), "", "[scheme://]host[:port] of that store (empty: AWS)")
	b.str(&s.Style, "s3-style", env("LINKISSUER_S3_STYLE"), "", "path or virtual (default virtual for AWS, path elsewhere)")
	b.str(&s.AccessID, "s3-access-id", env("LINKISSUER_S3_ACCESS_ID"), "", "HMAC access ID of that store; the secret comes from --s3-secret-file or $LINKISSUER_S3_SECRET (else the $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY pair)")
	b.str(&s.SecretFile, "s3-secret-file", env("LINKISSUER_S3_SECRET_FILE"), "", "file holding that store's HMAC secret")
	s.Secret = b.getenv("LINKISSUER_S3_SECRET")
	if s.AccessID == "" && s.SecretFile == "" && s.Secret == "" {
		if id, secret := b.getenv("AWS_ACCESS_KEY_ID"), b.getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
			s.Secret = secret
			b.fs.Lookup("s3-access-id").DefValue = id
			s.AccessID = id
		}
	}
}

func (s *S3) validate(v *validator) {
	if s.Region == "" {
		v.check(s.Endpoint == "" && s.AccessID == "", "s3-region", "is required with --s3-endpoint or --s3-access-id")
		return
	}
	v.check(s.Region != "auto", "s3-region", `"auto" is not an S3 region; R2 and the GCS XML API accept us-east-1 as its alias`)
	style, err := sign.ParseStyle(s.Style)
	v.check(err == nil && style != sign.BucketBoundHostname, "s3-style", "want path or virtual, got %q", s.Style)
	switch {
	case s.AccessID == "" && s.SecretFile == "" && s.Secret == "":
		v.fail("s3-access-id", "no HMAC key: set it with --s3-secret-file or $LINKISSUER_S3_SECRET (or $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY)")
	case s.AccessID == "":
		v.fail("s3-access-id", "a secret is configured but no access ID")
	case s.SecretFile == "" && s.Secret == "":
		v.fail("s3-secret-file", "access ID %s has no secret: set --s3-secret-file or $LINKISSUER_S3_SECRET", s.AccessID)
	}
}

// LinkCache configures the link cache in front of the event and
// synchronous paths (bulk jobs sign every row and never use it).
type LinkCache struct {
	Window time.Duration
	Size   int
}

func (l *LinkCache) register(b binder) {
	b.dur(&l.Window, "link-cache-window", env("LINKISSUER_LINK_CACHE_WINDOW"), linkcache.DefaultWindow, "identical link requests within this window get one URL (signed once; its lifetime grows by up to the window); 0 turns the cache off")
	b.int(&l.Size, "link-cache-size", env("LINKISSUER_LINK_CACHE_SIZE"), linkcache.DefaultSize, "most links the cache keeps")
}

func (l *LinkCache) validate(v *validator) {
	v.check(l.Window >= 0, "link-cache-window", "must not be negative, got %s", l.Window)
	v.check(l.Window == 0 || l.Size > 0, "link-cache-size", "must be > 0 with the cache on, got %d", l.Size)
}

// Service is what worker and serve share: credentials, URL shape, policy,
// topics, jobs, logging and lifecycle.
type Service struct {
	Cred      Credentials
	URL       URL
	Policy    Policy
	Jobs      Jobs
	S3        S3
	LinkCache LinkCache

	Project      string
	ResultsTopic string
	ErrorsTopic  string

	Addr     string
	LogLevel string
	Grace    time.Duration
	// PublishDelay is how long the result publisher waits to fill a batch.
	PublishDelay time.Duration
	// PreflightTimeout bounds each start-up check.
	PreflightTimeout time.Duration
	// Trace turns on OpenTelemetry tracing to Cloud Trace.
	Trace bool
	// Instance names this replica in dead letters: $K_REVISION (Cloud
	// Run), else $HOSTNAME; empty means the host name. It has no flag.
	Instance string
}

// Register adds the flags worker and serve share to fs (doctor checks a
// deployment configured with them).
func (s *Service) Register(fs *flag.FlagSet, getenv Getenv) { s.register(binder{fs, getenv}) }

func (s *Service) register(b binder) {
	s.Cred.Register(b.fs, b.getenv)
	s.Cred.Keyless.RegisterFleet(b.fs, b.getenv)
	s.URL.register(b)
	s.Policy.register(b)
	s.Jobs.register(b)
	s.S3.register(b)
	s.LinkCache.register(b)
	b.str(&s.Project, "project", envProject, "", "Google Cloud project of the topics and subscription")
	b.str(&s.ResultsTopic, "results-topic", env("LINKISSUER_RESULTS_TOPIC"), "", "topic for linkissuer.link.v1 messages")
	b.str(&s.ErrorsTopic, "errors-topic", env("LINKISSUER_ERRORS_TOPIC"), "", "topic for linkissuer.deadletter.v1 messages (bad input, policy refusals)")
	b.fs.StringVar(&s.Addr, "addr", ":"+String(b.getenv, "PORT", "8080"), "listen address for health, metrics (and push endpoints in serve) [$PORT]")
	b.str(&s.LogLevel, "log-level", env("LINKISSUER_LOG_LEVEL"), "info", "debug, info, warn or error")
	b.dur(&s.Grace, "grace", env("LINKISSUER_GRACE"), 8*time.Second, "shutdown grace: in-flight work finishes or is nacked within it (Cloud Run allows 10s)")
	b.bool(&s.Trace, "trace", env("LINKISSUER_TRACE"), false, "trace each message (receive, sign, publish) to Cloud Trace; needs roles/cloudtrace.agent")
	b.dur(&s.PreflightTimeout, "preflight-timeout", env("LINKISSUER_PREFLIGHT_TIMEOUT"), 30*time.Second, "bound on each start-up check (subscription, topics, signer)")
	b.dur(&s.PublishDelay, "publish-delay", env("LINKISSUER_PUBLISH_DELAY"), 2*time.Millisecond, "longest a result waits for its publish batch to fill: lower is less latency, higher is fewer publish requests")
	s.Instance = strings.TrimSpace(String(b.getenv, "K_REVISION", b.getenv("HOSTNAME")))
}

func (s *Service) validate(v *validator) {
	v.check(s.Project != "", "project", "is required")
	v.check(s.ResultsTopic != "", "results-topic", "is required")
	v.check(s.ErrorsTopic != "", "errors-topic", "is required")
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		v.fail("log-level", "want debug, info, warn or error, got %q", s.LogLevel)
	}
	v.check(s.Grace > 0, "grace", "must be > 0, got %s", s.Grace)
	v.check(s.PublishDelay >= 0, "publish-delay", "must not be negative, got %s", s.PublishDelay)
	v.check(s.PreflightTimeout > 0, "preflight-timeout", "must be > 0, got %s", s.PreflightTimeout)
	s.Cred.validate(v)
	s.URL.validate(v)
	s.Policy.validate(v)
	s.Jobs.validate(v)
	s.S3.validate(v)
	s.LinkCache.validate(v)
}

// Pull is the worker's own configuration: the subscription and its flow
// control.
type Pull struct {
	Subscription        string
	MaxOutstanding      int
	MaxOutstandingBytes int
	Streams             int
	MaxExtension        time.Duration
	HandlerTimeout      time.Duration
}

// Worker is the configuration of `linkissuer worker`.
type Worker struct {
	Service
	Pull
}

// Register adds the worker's flags to fs.
func (w *Worker) Register(fs *flag.FlagSet, getenv Getenv) {
	b := binder{fs, getenv}
	w.Service.register(b)
	b.str(&w.Subscription, "subscription", env("LINKISSUER_SUBSCRIPTION"), "", "subscription to pull from")
	b.int(&w.MaxOutstanding, "max-outstanding", env("LINKISSUER_MAX_OUTSTANDING"), 1000, "flow control: messages held at once")
	b.int(&w.MaxOutstandingBytes, "max-outstanding-bytes", env("LINKISSUER_MAX_OUTSTANDING_BYTES"), 64<<20, "flow control: bytes held at once")
	b.int(&w.Streams, "streams", env("LINKISSUER_STREAMS"), 2, "StreamingPull streams")
	b.dur(&w.MaxExtension, "max-extension", env("LINKISSUER_MAX_EXTENSION"), 10*time.Minute, "longest a message's ack deadline is extended")
	b.dur(&w.HandlerTimeout, "handler-timeout", env("LINKISSUER_HANDLER_TIMEOUT"), time.Minute, "bound on one message's processing")
}

// Validate reports every problem of w; it does not modify w.
func (w *Worker) Validate() error {
	v := &validator{settings: workerSettings()}
	v.check(w.Subscription != "", "subscription", "is required")
	w.Service.validate(v)
	v.check(w.MaxOutstanding > 0, "max-outstanding", "must be > 0, got %d", w.MaxOutstanding)
	v.check(w.MaxOutstandingBytes > 0, "max-outstanding-bytes", "must be > 0, got %d", w.MaxOutstandingBytes)
	v.check(w.Streams > 0, "streams", "must be > 0, got %d", w.Streams)
	v.check(w.MaxExtension > 0, "max-extension", "must be > 0, got %s", w.MaxExtension)
	v.check(w.HandlerTimeout > 0, "handler-timeout", "must be > 0, got %s", w.HandlerTimeout)
	return v.err()
}

// Push is serve's own configuration: who may push and how much.
type Push struct {
	PushEmails       string
	Audiences        string
	ServiceURL       string
	MaxBodyBytes     int
	MaxBytesInFlight int
	InsecureSkipAuth bool
	SyncLinks        bool
	HandlerTimeout   time.Duration
}

// Serve is the configuration of `linkissuer serve`.
type Serve struct {
	Service
	Push
}

// Register adds serve's flags to fs.
func (s *Serve) Register(fs *flag.FlagSet, getenv Getenv) {
	b := binder{fs, getenv}
	s.Service.register(b)
	b.str(&s.PushEmails, "push-emails", env("LINKISSUER_PUSH_EMAILS"), "", "comma-separated service accounts whose push/Eventarc tokens are accepted")
	b.str(&s.Audiences, "audiences", env("LINKISSUER_AUDIENCES"), "", "comma-separated accepted token audiences (the push endpoint URL)")
	b.str(&s.ServiceURL, "service-url", env("LINKISSUER_SERVICE_URL"), "", "this service's URL (https://NAME-HASH.REGION.run.app); the URL and its /pubsub/push and /events are accepted token audiences")
	b.int(&s.MaxBodyBytes, "max-body-bytes", env("LINKISSUER_MAX_BODY_BYTES"), worker.DefaultMaxBodyBytes, "largest push or event body; larger get 413")
	b.int(&s.MaxBytesInFlight, "max-bytes-in-flight", env("LINKISSUER_MAX_BYTES_IN_FLIGHT"), worker.DefaultMaxBytesInFlight, "bytes of bodies held at once; more get 429 with Retry-After (fit the instance's memory)")
	b.bool(&s.InsecureSkipAuth, "insecure-skip-auth", envNone, false, "accept requests without a token (local use against emulators only)")
	b.bool(&s.SyncLinks, "sync-links", env("LINKISSUER_SYNC_LINKS"), false, "serve POST /v1/links")
	b.dur(&s.Push.HandlerTimeout, "handler-timeout", env("LINKISSUER_HANDLER_TIMEOUT"), 30*time.Second, "bound on one delivery's processing (keep under the ack deadline)")
}

// Validate reports every problem of s; it does not modify s.
func (s *Serve) Validate() error {
	v := &validator{settings: serveSettings()}
	s.Service.validate(v)
	emails := splitList(s.PushEmails)
	v.check(len(emails) > 0 || s.InsecureSkipAuth, "push-emails", "is empty: name the service accounts of the push subscription and of the Eventarc trigger, or give --insecure-skip-auth for local use against emulators")
	for _, e := range emails {
		v.check(strings.Contains(e, "@"), "push-emails", "%q is not an email", e)
	}
	v.check(s.MaxBodyBytes > 0, "max-body-bytes", "must be > 0, got %d", s.MaxBodyBytes)
	v.check(s.MaxBytesInFlight > 0, "max-bytes-in-flight", "must be > 0, got %d", s.MaxBytesInFlight)
	v.check(s.Push.HandlerTimeout > 0, "handler-timeout", "must be > 0, got %s", s.Push.HandlerTimeout)
	return v.err()
}

// Export is the configuration of `linkissuer export`, apart from the job
// it runs: credentials, URL shape and concurrency. Its URL flags have no
// variables except --endpoint and --universe-domain.
type Export struct {
	Cred        Credentials
	URL         URL
	Concurrency int
}

// Register adds export's configuration flags to fs.
func (e *Export) Register(fs *flag.FlagSet, getenv Getenv) {
	b := binder{fs, getenv}
	e.Cred.Register(fs, getenv)
	e.Cred.Keyless.RegisterFleet(fs, getenv)
	b.str(&e.URL.Style, "style", envNone, "path", "URL style: path, virtual or bound")
	b.str(&e.URL.Hostname, "hostname", envNone, "", "explicit URL host, or the bucket-bound domain with --style bound")
	b.str(&e.URL.Endpoint, "endpoint", env("LINKISSUER_ENDPOINT"), "", "storage endpoint for the URLs, [scheme://]host[:port]")
	b.str(&e.URL.Scheme, "scheme", envNone, "https", "http or https")
	b.str(&e.URL.Region, "region", envNone, "auto", "credential-scope region")
	registerUniverseDomain(b, &e.URL.UniverseDomain)
	b.bool(&e.URL.AllowLongKeyless, "allow-long-keyless", envNone, false, "allow keyless URLs beyond 12h")
	e.URL.EmulatorHost = getenv("STORAGE_EMULATOR_HOST")
	b.int(&e.Concurrency, "concurrency", env("LINKISSUER_CONCURRENCY"), 0, "objects in flight (default 4 x CPUs with a key, 2 x --sign-in-flight keyless)")
}

// Validate reports every problem of e; it does not modify e.
func (e *Export) Validate() error {
	v := &validator{settings: exportSettings()}
	e.Cred.validate(v)
	e.URL.validate(v)
	v.check(e.Concurrency >= 0, "concurrency", "must not be negative (0 is the default), got %d", e.Concurrency)
	return v.err()
}

// The settings of each command, as registered with an empty environment:
// what Validate's errors name.
var (
	workerSettings = settingsOf(func(fs *flag.FlagSet) { new(Worker).Register(fs, noEnv) })
	serveSettings  = settingsOf(func(fs *flag.FlagSet) { new(Serve).Register(fs, noEnv) })
	exportSettings = settingsOf(func(fs *flag.FlagSet) { new(Export).Register(fs, noEnv) })
	credSettings   = settingsOf(func(fs *flag.FlagSet) {
		c := new(Credentials)
		c.Register(fs, noEnv)
		c.Keyless.RegisterFleet(fs, noEnv)
	})
	keylessSettings = settingsOf(func(fs *flag.FlagSet) {
		k := new(Keyless)
		k.Register(fs, noEnv)
		k.RegisterFleet(fs, noEnv)
	})
)

func noEnv(string) string { return "" }

func settingsOf(register func(*flag.FlagSet)) func() map[string]Setting {
	return sync.OnceValue(func() map[string]Setting {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		register(fs)
		m := map[string]Setting{}
		for _, s := range Settings(fs) {
			m[s.Flag] = s
		}
		return m
	})
}

// validator collects the problems of one configuration.
type validator struct {
	settings map[string]Setting
	errs     []error
}

func (v *validator) add(err error) { v.errs = append(v.errs, err) }

// fail records a problem with the flag name, as "--flag / VAR: problem".
func (v *validator) fail(name, format string, args ...any) {
	s, ok := v.settings[name]
	if !ok {
		s = Setting{Flag: name}
	}
	v.add(&Error{Setting: s, Problem: fmt.Sprintf(format, args...)})
}

func (v *validator) check(ok bool, name, format string, args ...any) {
	if !ok {
		v.fail(name, format, args...)
	}
}

func (v *validator) err() error { return errors.Join(v.errs...) }

// Error is a setting whose value is unusable.
type Error struct {
	Setting Setting
	Problem string
}

func (e *Error) Error() string { return e.Setting.Label() + ": " + e.Problem }
