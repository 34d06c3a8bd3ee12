package cli

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/sign"
)

const signUsage = `Usage: linkissuer sign [flags] gs://BUCKET/OBJECT|s3://BUCKET/KEY ...
       linkissuer sign [flags] --from-file FILE   (one URL per line, - for stdin)

Signs V4 URLs: GOOG4-RSA-SHA256 with a key file or keyless through IAM signBlob,
GOOG4-HMAC-SHA256 / AWS4-HMAC-SHA256 with an HMAC key. Bad inputs are reported
on stderr and the rest are still signed; the exit code is 1 if any failed.
--audit-topic (projects/P/topics/T) and --audit-log write a linkissuer.audit.v1
record per URL (caller: $LINKISSUER_SUBMITTER or the caller's account); with
--audit-fail-closed a URL whose record was not written is not printed.`

// signFlags is the parsed command line of `linkissuer sign`.
type signFlags struct {
	cred credFlags

	url urlFlags

	method      string
	duration    string
	at          string
	headers     stringList
	query       stringList
	output      string
	fromFile    string
	concurrency int
	audit       auditFlags
}

// urlFlags shape the URLs of `sign` and the form actions of `form`: where
// they point, the credential-scope region, and the keyless expiry cap.
type urlFlags struct {
	style          string
	hostname       string
	endpoint       string
	scheme         string
	region         string
	universeDomain string
	allowLong      bool
}

func (u *urlFlags) register(fs *flag.FlagSet, env Env) {
	fs.StringVar(&u.style, "style", "", "URL style: path, virtual or bound (default path; virtual for s3:// without --endpoint)")
	fs.StringVar(&u.hostname, "hostname", "", "explicit host[:port], or the bucket-bound domain with --style bound")
	fs.StringVar(&u.endpoint, "endpoint", envString(env, "LINKISSUER_ENDPOINT", ""), "storage endpoint [scheme://]host[:port] (S3-compatible stores, private endpoints) [$LINKISSUER_ENDPOINT]")
	fs.StringVar(&u.scheme, "scheme", "https", "http or https")
	fs.StringVar(&u.region, "region", envString(env, "LINKISSUER_REGION", ""), "region in the credential scope (default auto for gs://, required for s3://) [$LINKISSUER_REGION]")
	registerUniverseDomain(fs, env, &u.universeDomain)
	fs.BoolVar(&u.allowLong, "allow-long-keyless", false, "allow keyless URLs beyond 12h (they break when Google rotates the signing key)")
}

// registerUniverseDomain adds --universe-domain, which every command that
// builds gs:// links has.
func registerUniverseDomain(fs *flag.FlagSet, env Env, v *string) {
	fs.StringVar(v, "universe-domain", envString(env, "GOOGLE_CLOUD_UNIVERSE_DOMAIN", ""), "Google Cloud universe domain: gs:// links point at storage.DOMAIN (default googleapis.com) [$GOOGLE_CLOUD_UNIVERSE_DOMAIN]")
}

// Sign implements `linkissuer sign`.
func Sign(ctx context.Context, env Env, args []string) int {
	var f signFlags
	fs := newFlagSet(env, "sign", signUsage)
	f.cred.register(fs, env)
	f.cred.Keyless.RegisterFleet(fs, env.Getenv)
	fs.StringVar(&f.method, "method", envString(env, "LINKISSUER_METHOD", "GET"), "GET, HEAD, PUT, POST, DELETE or RESUMABLE")
	fs.StringVar(&f.duration, "duration", envString(env, "LINKISSUER_DURATION", "1h"), "lifetime: Go duration or N with s, m, h, d (max 7d; 12h keyless)")
	fs.StringVar(&f.at, "at", "", "signing time, RFC 3339 (default now)")
	fs.Var(&f.headers, "header", "signed header 'Name: value' the client must send (repeatable)")
	fs.Var(&f.query, "query", "signed query parameter name=value, e.g. response-content-disposition=attachment (repeatable)")
	f.url.register(fs, env)
	fs.StringVar(&f.output, "output", "text", "text (URL per line), json (object per line) or tsv (gsutil columns)")
	fs.StringVar(&f.fromFile, "from-file", "", "read gs:// or s3:// URLs from FILE, one per line (- for stdin)")
	f.audit.register(fs, env)
	fs.IntVar(&f.concurrency, "concurrency", envInt(env, "LINKISSUER_CONCURRENCY", 0), "signatures in flight (default 4 x CPUs with local keys, 64 keyless) [$LINKISSUER_CONCURRENCY]")
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	if fs.NArg() == 0 && f.fromFile == "" {
		fs.Usage()
		return ExitUsage
	}
	if fs.NArg() > 0 && f.fromFile != "" {
		fmt.Fprintln(env.Stderr, "linkissuer sign: give URLs as arguments or --from-file, not both")
		return ExitUsage
	}
	run, err := newSignRun(ctx, env, &f)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer sign: %v\n", err)
		return ExitUsage
	}
	defer run.close()

	inputs := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		defer close(inputs)
		readErr <- feedInputs(ctx, env, f.fromFile, fs.Args(), inputs)
	}()
	failed := run.signAll(ctx, inputs)
	if err := <-readErr; err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer sign: %v\n", err)
		return ExitFailure
	}
	if ctx.Err() != nil {
		fmt.Fprintln(env.Stderr, "linkissuer sign: interrupted")
		return ExitFailure
	}
	if failed > 0 {
		return ExitFailure
	}
	return ExitOK
}

// feedInputs sends each argument, or each entry of the file (eachLine), to
// out.
func feedInputs(ctx context.Context, env Env, file string, args []string, out chan<- string) error {
	send := func(s string) bool {
		select {
		case out <- s:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if file == "" {
		for _, a := range args {
			if !send(a) {
				return nil
			}
		}
		return nil
	}
	return eachLine(env, file, send)
}

// signRun holds what one invocation signs with: a URLSigner per dialect,
// built once, and the shared request template.
type signRun struct {
	env         Env
	out         *signOutput
	signers     map[sign.Dialect]*sign.URLSigner
	setupErr    map[sign.Dialect]error
	method      string
	expires     time.Duration
	at          time.Time
	headers     []sign.Header
	query       []sign.Param
	concurrency int
	closers     []func()
	// audit records every signed URL (nil: off); caller is who runs the
	// command, as the environment says (see callerAccount).
	audit  *audit.Recorder
	caller string
}

func newSignRun(ctx context.Context, env Env, f *signFlags) (*signRun, error) {
	out, err := newSignOutput(env.Stdout, f.output)
	if err != nil {
		return nil, err
	}
	r := &signRun{env: env, out: out, signers: map[sign.Dialect]*sign.URLSigner{}, setupErr: map[sign.Dialect]error{}}
	r.method = strings.ToUpper(f.method)
	if !sign.ValidMethod(r.method) {
		return nil, fmt.Errorf("--method %q: must be one of %s", f.method, sign.MethodList)
	}
	if r.expires, err = ParseDuration(f.duration); err != nil {
		return nil, fmt.Errorf("--duration: %w", err)
	}
	r.at = time.Now().UTC().Truncate(time.Second)
	if f.at != "" {
		if r.at, err = time.Parse(time.RFC3339, f.at); err != nil {
			return nil, fmt.Errorf("--at %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", f.at)
		}
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		r.headers = append(r.headers, sign.Header{Name: strings.TrimSpace(name), Value: value})
	}
	for _, q := range f.query {
		name, value, ok := strings.Cut(q, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--query %q: want name=value", q)
		}
		r.query = append(r.query, sign.Param{Name: name, Value: value})
	}

	cred, err := loadCredentials(ctx, env, &f.cred)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, cred.close)
	r.concurrency = f.concurrency
	if r.concurrency <= 0 {
		r.concurrency = 4 * runtime.NumCPU()
		if cred.signer.Credential().Keyless {
			r.concurrency = 64
		}
	}
	for _, d := range []sign.Dialect{sign.GOOG4, sign.AWS4} {
		opts, err := f.url.options(env, d)
		if err == nil {
			r.signers[d], err = sign.New(cred.signer, opts)
		}
		if err == nil {
			if err = sign.CheckExpiry(r.expires, r.signers[d].MaxExpiry()); err != nil {
				err = expiryError("--duration", f.duration, r.signers[d].MaxExpiry(), err)
			}
		}
		r.setupErr[d] = err
	}
	// Configuration errors that hit every URL are reported up front.
	if r.setupErr[sign.GOOG4] != nil && r.setupErr[sign.AWS4] != nil {
		return nil, r.setupErr[sign.GOOG4]
	}
	if err := r.startAudit(ctx, env, f, cred); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// startAudit sets up --audit-topic and --audit-log (see commandAudit).
func (r *signRun) startAudit(ctx context.Context, env Env, f *signFlags, cred *credentials) error {
	ca, err := f.audit.command(ctx, env)
	if err != nil || ca == nil {
		return err
	}
	rec, err := ca.recorder(cred.signer, f.cred.KeyFile)
	if err != nil {
		ca.close()
		return err
	}
	// Closers run in order: flush the records before anything else closes.
	r.closers = append([]func(){ca.close}, r.closers...)
	r.audit, r.caller = rec, callerAccount(env)
	return nil
}

func (r *signRun) close() {
	for _, c := range r.closers {
		c()
	}
}

// options builds the URLSigner options for dialect d from the flags.
func (f *urlFlags) options(env Env, d sign.Dialect) (*sign.Options, error) {
	o := &sign.Options{Dialect: d, Region: f.region, AllowLongKeyless: f.allowLong}
	if d == sign.GOOG4 && o.Region == "" {
		o.Region = "auto"
	}
	style, err := sign.ParseStyle(f.style)
	if err != nil {
		return nil, err
	}
	if f.style == "" && d == sign.AWS4 && f.endpoint == "" {
		style = sign.VirtualHostedStyle
	}
	o.Endpoint = sign.Endpoint{Scheme: f.scheme, Style: style, ClientEndpoint: f.endpoint}
	if style == sign.BucketBoundHostname {
		o.Endpoint.BucketBoundHostname = f.hostname
	} else {
		o.Endpoint.Hostname = f.hostname
	}
	if d == sign.GOOG4 {
		o.Endpoint.EmulatorHost = env.Getenv("STORAGE_EMULATOR_HOST")
		o.Endpoint.UniverseDomain = f.universeDomain
	}
	if d == sign.AWS4 && f.region == "" {
		return nil, &sign.InputError{Field: "region", Reason: "s3:// URLs need --region (e.g. us-east-1)"}
	}
	return o, o.Validate()
}

// signResult is the outcome for one input, in input order.
type signResult struct {
	input    string
	resource string
	url      *sign.SignedURL
	err      error
}

// signAll signs every input with r.concurrency signatures in flight and
// writes the results in input order. It returns the number of failures.
func (r *signRun) signAll(ctx context.Context, inputs <-chan string) int {
	type item struct {
		input string
		done  chan signResult
	}
	work := make(chan item)
	order := make(chan item, 4*r.concurrency) // bounds the reorder window
	var wg sync.WaitGroup
	for i := 0; i < r.concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				it.done <- r.signOne(ctx, it.input)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(work)
		for in := range inputs {
			it := item{input: in, done: make(chan signResult, 1)}
			select {
			case order <- it:
			case <-ctx.Done():
				return
			}
			select {
			case work <- it:
			case <-ctx.Done():
				it.done <- signResult{input: in, err: ctx.Err()}
				return
			}
		}
	}()

	prog := startProgress(r.env.Stderr, "sign", "read")
	defer prog.Stop()
	failed := 0
	for it := range order {
		res := <-it.done
		prog.Add(res.err == nil)
		if res.err != nil {
			failed++
			prog.Printf("linkissuer sign: %s: %v\n", res.input, res.err)
			continue
		}
		if err := r.out.write(res); err != nil {
			prog.Printf("linkissuer sign: writing output: %v\n", err)
			failed++
		}
	}
	wg.Wait()
	return failed
}

// signOne parses and signs one input.
func (r *signRun) signOne(ctx context.Context, input string) signResult {
	res := signResult{input: input}
	d, bucket, object, err := ParseTarget(input)
	if err != nil {
		res.err = err
		return res
	}
	res.resource = sign.Resource(d, bucket, object)
	if err := r.setupErr[d]; err != nil {
		res.err = err
		return res
	}
	req := sign.Request{
		Method:  r.method,
		Bucket:  bucket,
		Object:  object,
		Headers: r.headers,
		Query:   r.query,
		Expires: r.expires,
		Time:    r.at,
	}
	res.url, res.err = r.signers[d].Sign(ctx, req)
	if res.err == nil && r.audit != nil {
		actx := audit.WithRequester(ctx, audit.Requester{Path: audit.PathCLI, Caller: audit.Identity{Email: r.caller}})
		if err := r.audit.Record(actx, audit.Link{Request: req, Signed: res.url}); err != nil {
			// Fail-closed: the URL is not printed.
			res.url, res.err = nil, err
		}
	}
	return res
}

// ParseTarget splits gs://BUCKET/OBJECT or s3://BUCKET/KEY. The object is
// taken verbatim (not URL-decoded); it may be empty for a bucket URL.
func ParseTarget(s string) (d sign.Dialect, bucket, object string, err error) {
	var rest string
	switch {
	case strings.HasPrefix(s, "gs://"):
		d, rest = sign.GOOG4, s[len("gs://"):]
	case strings.HasPrefix(s, "s3://"):
		d, rest = sign.AWS4, s[len("s3://"):]
	default:
		return 0, "", "", &sign.InputError{Field: "url", Reason: "want gs://BUCKET/OBJECT or s3://BUCKET/KEY"}
	}
	bucket, object, _ = strings.Cut(rest, "/")
	if err := sign.ValidateBucket(d, bucket); err != nil {
		return 0, "", "", err
	}
	if object != "" {
		if err := sign.ValidateObject(object); err != nil {
			return 0, "", "", err
		}
	}
	return d, bucket, object, nil
}
