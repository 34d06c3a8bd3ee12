package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/localstack"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
)

const devUsage = `Usage: linkissuer dev [flags]

Runs linkissuer's local stack until Ctrl-C, for developing against linkissuer
without a Google Cloud project:
  Pub/Sub          pstest in this process, or Google's emulator (--real-pubsub)
  Cloud Storage    fake-gcs-server; uploads publish OBJECT_FINALIZE to Pub/Sub
  IAM Credentials  signBlob and public keys, for keyless signing and verify
It creates the topics, subscriptions (the worker's with a dead-letter topic),
the bucket and its notification config, then prints shell lines to paste into
the terminal where your code or "linkissuer worker" runs.`

// devFlags is the parsed command line of `linkissuer dev` (and the stack
// part of `linkissuer demo`).
type devFlags struct {
	project     string
	bucket      string
	realPubSub  bool
	pubsubAddr  string
	storageAddr string
	iamAddr     string
	iamLatency  time.Duration
	verbose     bool
}

func (f *devFlags) register(fs *flag.FlagSet, project, bucket string, iamLatency time.Duration) {
	fs.StringVar(&f.project, "project", project, "Google Cloud project ID the topics live in")
	fs.StringVar(&f.bucket, "bucket", bucket, "bucket to create")
	fs.BoolVar(&f.realPubSub, "real-pubsub", false, "use Google's Pub/Sub emulator (Cloud SDK, needs Java) instead of pstest: it enforces dead-letter policies and exactly-once delivery")
	fs.StringVar(&f.pubsubAddr, "pubsub-addr", localstack.DefaultAddr, "host:port for pstest (port 0: any free port; ignored with --real-pubsub)")
	fs.StringVar(&f.storageAddr, "storage-addr", localstack.DefaultAddr, "host:port for fake-gcs-server")
	fs.StringVar(&f.iamAddr, "iam-addr", localstack.DefaultAddr, "host:port for the IAM Credentials emulator")
	fs.DurationVar(&f.iamLatency, "iam-latency", iamLatency, "signBlob answer latency (the real API takes about 50ms)")
	fs.BoolVar(&f.verbose, "verbose", false, "write the emulators' (and in demo, the worker's) logs to stderr")
}

func (f *devFlags) options(logw io.Writer) *localstack.Options {
	o := &localstack.Options{
		Project: f.project, Bucket: f.bucket, RealPubSub: f.realPubSub,
		PubSubAddr: f.pubsubAddr, StorageAddr: f.storageAddr, IAMAddr: f.iamAddr,
		IAM: &iamemu.Options{Latency: f.iamLatency, Jitter: f.iamLatency / 5},
	}
	if f.verbose {
		o.Log = logw
	}
	return o
}

// Dev implements `linkissuer dev`.
func Dev(ctx context.Context, env Env, args []string) int {
	var f devFlags
	fs := newFlagSet(env, "dev", devUsage)
	f.register(fs, localstack.DefaultProject, localstack.DefaultBucket, 0)
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "linkissuer dev: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	opts := f.options(env.Stderr)
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer dev: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintln(env.Stdout, "# starting the local stack...")
	st, err := localstack.Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer dev: %v\n", err)
		if errors.Is(err, pubsubemu.ErrNotInstalled) {
			fmt.Fprintln(env.Stderr, "linkissuer dev: run without --real-pubsub to use pstest, which needs nothing installed")
		}
		return ExitFailure
	}
	printStackEnv(env.Stdout, st)
	fmt.Fprintln(env.Stdout, "# Ctrl-C stops the stack.")

	<-ctx.Done()
	return closeStack(env, "linkissuer dev", st)
}

// closeStack stops st within a deadline and reports how that went.
func closeStack(env Env, cmd string, st *localstack.Stack) int {
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Close(cctx); err != nil {
		fmt.Fprintf(env.Stderr, "%s: stopping the local stack: %v\n", cmd, err)
		return ExitFailure
	}
	fmt.Fprintln(env.Stdout, "# local stack stopped")
	return ExitOK
}

// printStackEnv prints the stack as shell lines: exports that point the
// Google client libraries and `linkissuer worker` at it, and comments that
// describe it. The output can be pasted into a shell as it is.
func printStackEnv(w io.Writer, st *localstack.Stack) {
	t := st.Topology
	fmt.Fprintf(w, `# linkissuer local stack
#   Pub/Sub          %s at %s
#   Cloud Storage    fake-gcs-server at %s, bucket %s
#                    (uploads publish OBJECT_FINALIZE to topic %s)
#   IAM Credentials  emulator at %s, signing as %s
#   public keys      %s/service_accounts/v1/metadata/x509/%s (and /jwk/)
# Paste these lines into the shell that runs your code or "linkissuer worker":
`, st.PubSubKind, st.PubSubHost, st.StorageHost, st.Bucket, t.Notifications,
		st.IAM.Endpoint(), st.IAM.Email(), st.IAM.URL(), st.IAM.Email())
	for _, kv := range [][2]string{
		{localstack.EnvPubSub, st.PubSubHost},
		{localstack.EnvStorage, st.StorageHost},
		{"GOOGLE_CLOUD_PROJECT", st.Project},
		{"LINKISSUER_IAM_ENDPOINT", st.IAM.Endpoint()},
		{"LINKISSUER_SERVICE_ACCOUNT", st.IAM.Email()},
		{"LINKISSUER_SUBSCRIPTION", t.WorkerSubscription},
		{"LINKISSUER_RESULTS_TOPIC", t.Results},
		{"LINKISSUER_ERRORS_TOPIC", t.Errors},
		{"LINKISSUER_JOBS_TOPIC", t.Jobs},
		{"LINKISSUER_ALLOW", st.Bucket},
	} {
		fmt.Fprintf(w, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	fmt.Fprintf(w, `# Then: linkissuer worker --addr 127.0.0.1:8080     (links go to %s)
#       linkissuer verify --iam-endpoint %s 'SIGNED_URL'
`, t.Results, st.IAM.Endpoint())
	fmt.Fprint(w, jobsWorkerHint(t.JobsSubscription))
	fmt.Fprintf(w, `# Topics:        %s, %s, %s, %s, %s
# Subscriptions: %s (on %s; after 5 failed deliveries: %s)
#                %s (on %s)
#                %s, %s, %s (to watch the outputs)
`, t.Notifications, t.Results, t.Errors, t.DeadLetter, t.Jobs,
		t.WorkerSubscription, t.Notifications, t.DeadLetter,
		t.JobsSubscription, t.Jobs,
		t.ResultsSubscription, t.ErrorsSubscription, t.DeadLetterSubscription)
}

// jobsWorkerHint says, as shell comments, that job messages need a worker
// of their own on the jobs subscription, and gives its command line: a
// worker pulls one subscription, and the first one pulls notifications.
func jobsWorkerHint(jobsSubscription string) string {
	return fmt.Sprintf(`# Job messages (linkissuer submit, and the shards of split jobs) arrive on %s, which
# that worker does not pull: they wait there until a second worker runs, in another shell
# with the same exports:
#       linkissuer worker --subscription %s --addr 127.0.0.1:8081
#   (jobs that publish links to a topic also need LINKISSUER_JOBS_STATE=gs://BUCKET/PREFIX
#    for their markers and error rows, in a bucket without a notification config)
`, jobsSubscription, jobsSubscription)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@' || c == ',') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
