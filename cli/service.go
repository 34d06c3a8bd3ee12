package cli

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/sign"
)

// serviceFlags is the configuration shared by `worker` (pull) and `serve`
// (push): credentials, URL shape, policy, topics and logging. Every flag
// takes its default from an environment variable, Cloud Run style.
type serviceFlags struct {
	cred  credFlags
	audit auditFlags

	project      string
	resultsTopic string
	errorsTopic  string
	jobsTopic    string

	// URL shape.
	style    string
	hostname string
	endpoint string
	scheme   string
	region   string
	// universeDomain replaces googleapis.com in the links' host.
	universeDomain string

	// Policy.
	allow          string
	methods        string
	defaultExpiry  time.Duration
	maxExpiry      time.Duration
	contentTypes   string
	responseParams stringList
	allowDots      bool
	allowControl   bool
	allowLong      bool

	addr     string
	logLevel string
	grace    time.Duration
	// publishDelay is how long the result publisher waits to fill a batch.
	publishDelay time.Duration
	// jobs says job messages can arrive: a storage client is then required.
	jobs bool
	// preflightTimeout bounds each start-up check.
	preflightTimeout time.Duration
	// trace turns on OpenTelemetry tracing to Cloud Trace.
	trace     bool
	linkCache linkCacheFlags
	linkMeta  linkMetaFlags
}

func (s *serviceFlags) register(fs *flag.FlagSet, env Env) {
	s.cred.register(fs, env)
	s.audit.register(fs, env)
	fs.StringVar(&s.project, "project", envString(env, "LINKISSUER_PROJECT", envString(env, "GOOGLE_CLOUD_PROJECT", "")), "Google Cloud project of the topics and subscription [$LINKISSUER_PROJECT, $GOOGLE_CLOUD_PROJECT]")
	fs.StringVar(&s.resultsTopic, "results-topic", envString(env, "LINKISSUER_RESULTS_TOPIC", ""), "topic for linkissuer.link.v1 messages [$LINKISSUER_RESULTS_TOPIC]")
	fs.StringVar(&s.errorsTopic, "errors-topic", envString(env, "LINKISSUER_ERRORS_TOPIC", ""), "topic for linkissuer.deadletter.v1 messages (bad input, policy refusals) [$LINKISSUER_ERRORS_TOPIC]")
	fs.StringVar(&s.jobsTopic, "jobs-topic", envString(env, "LINKISSUER_JOBS_TOPIC", ""), "topic that job shards are published back to [$LINKISSUER_JOBS_TOPIC]")

	fs.StringVar(&s.style, "style", envString(env, "LINKISSUER_STYLE", "path"), "URL style: path, virtual or bound [$LINKISSUER_STYLE]")
	fs.StringVar(&s.hostname, "hostname", envString(env, "LINKISSUER_HOSTNAME", ""), "explicit URL host, or the bucket-bound domain [$LINKISSUER_HOSTNAME]")
	fs.StringVar(&s.endpoint, "endpoint", envString(env, "LINKISSUER_ENDPOINT", ""), "storage endpoint for the URLs, [scheme://]host[:port] [$LINKISSUER_ENDPOINT]")
	fs.StringVar(&s.scheme, "scheme", envString(env, "LINKISSUER_SCHEME", "https"), "http or https [$LINKISSUER_SCHEME]")
	fs.StringVar(&s.region, "region", envString(env, "LINKISSUER_REGION", "auto"), "credential-scope region [$LINKISSUER_REGION]")
	registerUniverseDomain(fs, env, &s.universeDomain)

	fs.StringVar(&s.allow, "allow", envString(env, "LINKISSUER_ALLOW", ""), "comma-separated BUCKET or BUCKET/GLOB rules that may be signed ('*' one segment, '**' any) [$LINKISSUER_ALLOW]")
	fs.StringVar(&s.methods, "methods", envString(env, "LINKISSUER_METHODS", "GET"), "comma-separated methods that may be signed [$LINKISSUER_METHODS]")
	fs.DurationVar(&s.defaultExpiry, "default-expiry", envDuration(env, "LINKISSUER_DEFAULT_EXPIRY", 15*time.Minute), "lifetime when a request names none [$LINKISSUER_DEFAULT_EXPIRY]")
	fs.DurationVar(&s.maxExpiry, "max-expiry", envDuration(env, "LINKISSUER_MAX_EXPIRY", time.Hour), "longest lifetime granted [$LINKISSUER_MAX_EXPIRY]")
	fs.StringVar(&s.contentTypes, "content-types", envString(env, "LINKISSUER_CONTENT_TYPES", ""), "comma-separated content-type globs to sign (empty: any) [$LINKISSUER_CONTENT_TYPES]")
	fs.Var(&s.responseParams, "response-param", "query parameter added to every URL, e.g. response-content-disposition=attachment (repeatable) [$LINKISSUER_RESPONSE_PARAMS, comma-separated]")
	if v := env.Getenv("LINKISSUER_RESPONSE_PARAMS"); v != "" {
		s.responseParams = strings.Split(v, ",")
	}
	fs.BoolVar(&s.allowControl, "allow-control-chars", false, "sign object names that contain control characters")
	fs.BoolVar(&s.allowDots, "allow-dot-segments", false, "sign object names with a . or .. segment (public/../private/x), which path-normalizing clients read as another object")
	fs.BoolVar(&s.allowLong, "allow-long-keyless", false, "allow keyless URLs beyond 12h")

	fs.StringVar(&s.addr, "addr", ":"+envString(env, "PORT", "8080"), "listen address for health, metrics (and push endpoints in serve) [$PORT]")
	fs.StringVar(&s.logLevel, "log-level", envString(env, "LINKISSUER_LOG_LEVEL", "info"), "debug, info, warn or error [$LINKISSUER_LOG_LEVEL]")
	fs.DurationVar(&s.grace, "grace", envDuration(env, "LINKISSUER_GRACE", 8*time.Second), "shutdown grace: in-flight work finishes or is nacked within it (Cloud Run allows 10s) [$LINKISSUER_GRACE]")
	fs.BoolVar(&s.jobs, "jobs", envBool(env, "LINKISSUER_JOBS", true), "run job messages (linkissuer.job.v1); needs a Cloud Storage client at start. false: job messages are dead-lettered [$LINKISSUER_JOBS]")
	fs.BoolVar(&s.trace, "trace", envBool(env, "LINKISSUER_TRACE", false), "trace each message (receive, sign, publish) to Cloud Trace; needs roles/cloudtrace.agent [$LINKISSUER_TRACE]")
	fs.DurationVar(&s.preflightTimeout, "preflight-timeout", envDuration(env, "LINKISSUER_PREFLIGHT_TIMEOUT", 30*time.Second), "bound on each start-up check (subscription, topics, signer) [$LINKISSUER_PREFLIGHT_TIMEOUT]")
	fs.DurationVar(&s.publishDelay, "publish-delay", envDuration(env, "LINKISSUER_PUBLISH_DELAY", 2*time.Millisecond), "longest a result waits for its publish batch to fill: lower is less latency, higher is fewer publish requests [$LINKISSUER_PUBLISH_DELAY]")
	s.linkCache.register(fs, env)
	s.linkMeta.register(fs, env)
}

// policy compiles the policy flags.
func (s *serviceFlags) policy() (*policy.Policy, error) {
	c := policy.Config{
		Allow:             splitList(s.allow),
		Methods:           splitList(s.methods),
		DefaultExpiry:     s.defaultExpiry,
		MaxExpiry:         s.maxExpiry,
		ContentTypes:      splitList(s.contentTypes),
		AllowControlChars: s.allowControl,
		AllowDotSegments:  s.allowDots,
	}
	for _, p := range s.responseParams {
		name, value, ok := strings.Cut(p, "=")
		if !ok || !strings.HasPrefix(name, "response-") {
			return nil, fmt.Errorf("--response-param %q: want response-NAME=value", p)
		}
		c.ResponseParams = append(c.ResponseParams, sign.Param{Name: name, Value: value})
	}
	if len(c.Allow) == 0 {
		return nil, fmt.Errorf("--allow is empty: name the buckets (and prefixes) that may be signed")
	}
	return policy.New(c)
}

// signOptions builds the GOOG4 URL options.
func (s *serviceFlags) signOptions(env Env) (*sign.Options, error) {
	style, err := sign.ParseStyle(s.style)
	if err != nil {
		return nil, err
	}
	o := &sign.Options{
		Dialect:          sign.GOOG4,
		Region:           s.region,
		AllowLongKeyless: s.allowLong,
		Endpoint: sign.Endpoint{
			Scheme:         s.scheme,
			Style:          style,
			ClientEndpoint: s.endpoint,
			EmulatorHost:   env.Getenv("STORAGE_EMULATOR_HOST"),
			UniverseDomain: s.universeDomain,
		},
	}
	if style == sign.BucketBoundHostname {
		o.Endpoint.BucketBoundHostname = s.hostname
	} else {
		o.Endpoint.Hostname = s.hostname
	}
	return o, o.Validate()
}

// splitList splits a comma-separated flag, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
