package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

const exportUsage = `Usage: linkissuer export gs://BUCKET[/PREFIX] --manifest gs://OUT/PATH [flags]
       linkissuer export gs://BUCKET --objects FILE --manifest gs://OUT/PATH [flags]

Runs a bulk export job here, without Pub/Sub: lists the prefix (or takes the
object names in FILE, one per line, - for stdin), signs a URL for every object
(filtered by --match), and streams the links into the manifest as JSONL or CSV
rows (object, generation, size, content_type, url, expires_at). Objects that
get no link (missing, or refused by policy or by the signer) go to an errors
file beside the manifest; a signer that stays down fails the export instead
(nothing is written; run it again). Prints a summary and a signed URL to the manifest itself; the exit
code is 1 if any object got no link. On a terminal, a progress line shows
objects listed, signed and failed, the rate and, once a names-only count has
finished, the percentage and ETA.
STORAGE_EMULATOR_HOST points listing, writing and the URLs at an emulator.
--audit-topic (projects/P/topics/T) and --audit-log write a linkissuer.audit.v1
record per row and for the manifest's URL (path job, the job ID, and as
submitter $LINKISSUER_SUBMITTER or the caller's account); with
--audit-fail-closed, rows whose records were not written are not released and
the export fails.`

// jobFlags build a linkissuer.job.v1 message from the command line; export
// and submit share them.
type jobFlags struct {
	manifest           string
	format             string
	match              string
	objects            string
	includeGenerations bool
	method             string
	duration           string
	jobID              string
	responseParams     stringList
	// outputTopic and notifyTopic are submit's: full topic names.
	outputTopic, notifyTopic string
	// topicOutput is set by submit, which offers --output-topic.
	topicOutput bool
	// s3Endpoint and s3Region are submit's: the S3-compatible store of an
	// s3:// source, as the worker's $LINKISSUER_S3_* name it.
	s3Endpoint, s3Region string
}

func (j *jobFlags) register(fs *flag.FlagSet, env Env) {
	fs.StringVar(&j.manifest, "manifest", "", "manifest object to write, gs://BUCKET/PATH")
	fs.StringVar(&j.format, "format", "", "manifest format, jsonl or csv (default: csv if PATH ends in .csv, else jsonl)")
	fs.StringVar(&j.match, "match", "", "glob the object names must match (GCS matchGlob: *, **, ?, [abc], {a,b})")
	fs.StringVar(&j.objects, "objects", "", "sign the object names in FILE (one per line, - for stdin) instead of listing")
	fs.BoolVar(&j.includeGenerations, "include-generations", false, "list every generation, and sign each for its generation")
	fs.StringVar(&j.method, "method", envString(env, "LINKISSUER_METHOD", "GET"), "GET, HEAD, PUT, POST, DELETE or RESUMABLE")
	fs.StringVar(&j.duration, "duration", envString(env, "LINKISSUER_DURATION", "1h"), "lifetime of every link: 7d, 12h, 15m, 90s (at most 7d; 12h keyless)")
	fs.StringVar(&j.jobID, "job-id", "", "job ID (default export-TIMESTAMP-RANDOM, unique per run); it names the job's state objects")
	fs.Var(&j.responseParams, "response-param", "response-NAME=VALUE signed into every link, e.g. response-content-disposition=attachment (repeatable; gs:// takes response-content-disposition and response-content-type)")
}

// defaultJobID names a job that was given no --job-id: the time, to sort
// by, and 32 random bits, so that two runs in the same second differ.
func defaultJobID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "export-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// build returns the job for source (gs://BUCKET[/PREFIX], or
// s3://BUCKET[/PREFIX] with j.s3Region), validated.
func (j *jobFlags) build(env Env, source string, now time.Time) (*schema.Job, error) {
	var store schema.Store // empty: gcs
	rest, ok := strings.CutPrefix(source, "gs://")
	if !ok {
		if rest, ok = strings.CutPrefix(source, "s3://"); ok {
			store = schema.StoreS3
		}
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if !ok || bucket == "" {
		return nil, fmt.Errorf("source %q: want gs://BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]", source)
	}
	if store == schema.StoreS3 && j.s3Region == "" {
		return nil, errors.New("an s3:// source needs --s3-region (and --s3-endpoint unless it is AWS): the store the worker's $LINKISSUER_S3_* configure")
	}
	switch {
	case j.manifest != "" && j.outputTopic != "":
		return nil, errors.New("give --manifest or --output-topic, not both")
	case j.manifest == "" && j.outputTopic == "" && j.topicOutput:
		return nil, errors.New("give --manifest gs://BUCKET/PATH, or --output-topic TOPIC to publish the links instead")
	case j.manifest == "" && j.outputTopic == "":
		return nil, errors.New("give --manifest gs://BUCKET/PATH: where the links are written")
	}
	expiry, err := ParseDuration(j.duration)
	if err == nil {
		err = sign.CheckExpiry(expiry, sign.MaxExpiry)
	}
	if err != nil {
		return nil, fmt.Errorf("--duration: %w", err)
	}
	format := schema.ManifestFormat(j.format)
	if format == "" {
		format = schema.FormatForName(j.manifest)
	}
	id := j.jobID
	if id == "" {
		id = defaultJobID(now)
	}
	job := &schema.Job{
		JobID:       id,
		Source:      schema.JobSource{Store: store, Bucket: bucket, Prefix: prefix, Match: j.match, IncludeGenerations: j.includeGenerations},
		Method:      strings.ToUpper(j.method),
		ExpiresIn:   schema.FormatExpiresIn(expiry),
		Output:      schema.JobOutput{Topic: j.outputTopic},
		NotifyTopic: j.notifyTopic,
	}
	if j.manifest != "" {
		job.Output.Manifest = &schema.ManifestTarget{URI: j.manifest, Format: format}
	}
	if store == schema.StoreS3 {
		job.Source.Endpoint, job.Source.Region = j.s3Endpoint, j.s3Region
	}
	for _, p := range j.responseParams {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--response-param %q: want response-NAME=VALUE", p)
		}
		if job.ResponseParams == nil {
			job.ResponseParams = map[string]string{}
		}
		if _, dup := job.ResponseParams[name]; dup {
			return nil, fmt.Errorf("--response-param %s given twice", name)
		}
		job.ResponseParams[name] = value
	}
	if j.objects != "" {
		if prefix != "" || j.match != "" || j.includeGenerations {
			return nil, errors.New("--objects takes gs://BUCKET alone, without a prefix, --match or --include-generations")
		}
		if job.Source.Objects, err = readObjectNames(env, j.objects); err != nil {
			return nil, err
		}
	}
	if err := job.Validate(); err != nil {
		var fe *schema.FieldError
		if errors.As(err, &fe) && strings.HasPrefix(fe.Field, "response_params") {
			return nil, fmt.Errorf("--response-param: %w", err)
		}
		return nil, err
	}
	return job, nil
}

// readObjectNames reads one object name per line (eachLine).
func readObjectNames(env Env, file string) ([]schema.ObjectRef, error) {
	var refs []schema.ObjectRef
	tooMany := false
	err := eachLine(env, file, func(line string) bool {
		if tooMany = len(refs) == schema.MaxJobObjects; tooMany {
			return false
		}
		refs = append(refs, schema.ObjectRef{Name: line})
		return true
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("--objects: %w", err)
	case tooMany:
		return nil, fmt.Errorf("--objects: more than %d names; split the list", schema.MaxJobObjects)
	case len(refs) == 0:
		return nil, errors.New("--objects: no object names")
	}
	return refs, nil
}

// exportFlags is the parsed command line of `linkissuer export`.
type exportFlags struct {
	job   jobFlags
	cfg   config.Export
	audit auditFlags
	json  bool
}

// Export implements `linkissuer export`: parse, validate, build, run.
func Export(ctx context.Context, env Env, args []string) int {
	var f exportFlags
	fs := newFlagSet(env, "export", exportUsage)
	f.job.register(fs, env)
	f.cfg.Register(fs, env.Getenv)
	fs.BoolVar(&f.json, "json", false, "print the completion message (linkissuer.job_done.v1) as JSON instead of a summary")
	f.audit.register(fs, env)
	positional, err := parseFlagsInterspersed(fs, env, args)
	if err != nil {
		return ExitUsage
	}
	if len(positional) != 1 {
		fs.Usage()
		return ExitUsage
	}
	if strings.HasPrefix(positional[0], "s3://") {
		fmt.Fprintln(env.Stderr, "linkissuer export: export signs Cloud Storage objects; for an S3-compatible source, submit the job (linkissuer submit s3://...) to a worker configured with --s3-region and the other --s3-* flags")
		return ExitUsage
	}
	job, err := f.job.build(env, positional[0], time.Now())
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer export: %v\n", err)
		return ExitUsage
	}
	if err := f.cfg.Validate(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer export: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nlinkissuer export: "))
		return ExitUsage
	}
	r := &exportRun{env: env, f: &f}
	opts := &app.ExportOptions{OnObject: func(ok bool) { r.prog.Add(ok) }, Log: fleetLog(env)}
	ca, err := f.audit.command(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer export: %v\n", err)
		return ExitUsage
	}
	// Deferred first, run last: the records are flushed once the export is
	// done with them.
	defer ca.close()
	if ca != nil {
		if err := exportSubmitter(env, job); err != nil {
			fmt.Fprintf(env.Stderr, "linkissuer export: %v\n", err)
			return ExitUsage
		}
		opts.Audit = func(signer sign.Signer) (*audit.Recorder, error) { return ca.recorder(signer, f.cfg.Cred.KeyFile) }
	}
	r.export, err = app.NewExport(ctx, &f.cfg, job, opts)
	var ee *app.ExpiryError
	if errors.As(err, &ee) {
		err = expiryError("--duration", f.job.duration, ee.Limit, ee.Err)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer export: %v\n", err)
		return ExitUsage
	}
	defer r.export.Close()
	r.prog = startProgress(env.Stderr, "export "+strings.TrimSuffix("gs://"+job.Source.Bucket+"/"+job.Source.Prefix, "/"), "listed")
	defer r.prog.Stop()
	return r.run(ctx, job)
}

// exportSubmitter names who runs an audited export as its job's
// submitter, as `linkissuer submit` names who submits a job (see
// callerAccount).
func exportSubmitter(env Env, job *schema.Job) error {
	if job.Submitter != "" {
		return nil
	}
	job.Submitter = callerAccount(env)
	if err := job.Validate(); err != nil {
		return fmt.Errorf("submitter %.64q (from $LINKISSUER_SUBMITTER or the caller's account): %w", job.Submitter, err)
	}
	return nil
}

// exportRun is one export's runner and progress line.
type exportRun struct {
	env    Env
	f      *exportFlags
	export *app.Export
	prog   *progress
}

// storageClient honours STORAGE_EMULATOR_HOST from env (the storage
// library itself reads only the process environment).
func storageClient(ctx context.Context, env Env) (*storage.Client, error) {
	return app.StorageClient(ctx, env.Getenv("STORAGE_EMULATOR_HOST"))
}

func (r *exportRun) run(ctx context.Context, job *schema.Job) int {
	var counting sync.WaitGroup
	cctx, stopCount := context.WithCancel(ctx)
	if isTerminal(r.env.Stderr) {
		counting.Add(1)
		go func() {
			defer counting.Done()
			if n, err := jobs.Count(cctx, r.export.GCS, &job.Source); err == nil {
				r.prog.SetTotal(n)
			}
		}()
	}
	done, err := r.export.Runner.Run(ctx, job)
	stopCount()
	counting.Wait()
	r.prog.Stop()
	if err != nil {
		fmt.Fprintf(r.env.Stderr, "linkissuer export: %v\n", err)
		return ExitFailure
	}
	if r.f.json {
		enc := json.NewEncoder(r.env.Stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(done); err != nil {
			fmt.Fprintf(r.env.Stderr, "linkissuer export: %v\n", err)
			return ExitFailure
		}
	} else {
		printSummary(r.env.Stdout, done)
	}
	if done.Counts.Skipped+done.Counts.Failed > 0 {
		return ExitFailure
	}
	return ExitOK
}

// printSummary writes the completion for a person.
func printSummary(w io.Writer, d *schema.JobDone) {
	c := d.Counts
	elapsed := time.Duration(d.DurationMS) * time.Millisecond
	rate := 0.0
	if elapsed > 0 {
		rate = float64(c.Signed) / elapsed.Seconds()
	}
	fmt.Fprintf(w, "job       %s\n", d.JobID)
	fmt.Fprintf(w, "objects   %d listed, %d signed, %d refused, %d failed in %s (%.0f/s)\n",
		c.Listed, c.Signed, c.Skipped, c.Failed, elapsed.Round(time.Millisecond), rate)
	if m := d.Manifest; m != nil {
		fmt.Fprintf(w, "manifest  %s (%s)\n", m.URI, m.Format)
		if d.ErrorsURI != "" {
			fmt.Fprintf(w, "errors    %s\n", d.ErrorsURI)
		}
		fmt.Fprintf(w, "url       %s\n", m.URL)
		fmt.Fprintf(w, "expires   %s\n", m.URLExpiresAt.Format(time.RFC3339))
	}
}
