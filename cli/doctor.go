package cli

import (
	"github.com/linkissuer/linkissuer/config"

	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/preflight"
)

const doctorUsage = `Usage: linkissuer doctor [flags]

Checks a deployment before rollout, with the worker's own configuration
(the same flags and $LINKISSUER_* variables; run it as a Cloud Run job with
the service's environment, or by hand):

  - the IAM Credentials API answers (keyless signing);
  - the runtime account's email resolves from the metadata server;
  - the signer signs (keyless: the runtime account holds
    roles/iam.serviceAccountTokenCreator on the signing account);
  - every --subscription exists, may be pulled from, has a dead-letter
    topic, and the Pub/Sub service agent may forward dead letters;
  - the results, errors and jobs topics exist and may be published to;
  - the buckets of --allow exist and may be listed;
  - the --quota-fleet prefix may be written, listed and deleted from (a
    probe member object, doctor-HOST-PID, written and deleted again).

Prints one line per check (ok, FAIL or skip) and a fix under each failure.
Exit status: 0 when nothing failed, 1 when a check failed, 2 for usage.`

// Doctor implements `linkissuer doctor`.
func Doctor(ctx context.Context, env Env, args []string) int {
	var f config.Service
	var audit auditFlags
	var subs string
	var timeout time.Duration
	fs := newFlagSet(env, "doctor", doctorUsage)
	f.Register(fs, env.Getenv)
	audit.register(fs, env) // a deployment's audit settings are accepted here too
	fs.StringVar(&subs, "subscription", envString(env, "LINKISSUER_SUBSCRIPTION", ""), "comma-separated subscriptions the workers pull from [$LINKISSUER_SUBSCRIPTION]")
	fs.DurationVar(&timeout, "timeout", envDuration(env, "LINKISSUER_DOCTOR_TIMEOUT", 30*time.Second), "bound on each check [$LINKISSUER_DOCTOR_TIMEOUT]")
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "linkissuer doctor: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	if f.Project == "" {
		fmt.Fprintln(env.Stderr, "linkissuer doctor: --project (or $GOOGLE_CLOUD_PROJECT) is required")
		return ExitUsage
	}

	// The runtime account comes first: the other checks' fixes name it.
	var runtime string
	results := preflight.Run(ctx, timeout, preflight.RuntimeAccount(preflight.Metadata{}, &runtime))
	var checks []preflight.Check
	if f.Cred.Keyless.Requested() {
		endpoint := f.Cred.Keyless.IAMEndpoint
		if endpoint == "" {
			endpoint = "https://iamcredentials.googleapis.com/"
		}
		checks = append(checks, preflight.Reachable(&http.Client{Timeout: timeout}, "IAM Credentials API", endpoint))
	}
	// The signer signs once here: it does not join the quota fleet, which
	// has a check of its own below.
	signerCred := f.Cred
	signerCred.Keyless.Fleet = config.QuotaFleet{}
	cred, err := loadCredentials(ctx, env, &credFlags{signerCred})
	if err != nil {
		checks = append(checks, preflight.Static("signer", preflight.Fixf(err, "give --key-file, --hmac-access-id, or --service-account/--keyless")))
	} else {
		defer cred.close()
		checks = append(checks, preflight.Signs(cred.signer, &runtime))
	}

	client, err := pubsub.NewClient(ctx, f.Project)
	if err != nil {
		checks = append(checks, preflight.Static("Pub/Sub client", err))
	} else {
		defer client.Close()
		ps := preflight.PubSub{Client: client, Project: f.Project}
		for _, s := range splitList(subs) {
			checks = append(checks,
				preflight.Subscription(ps, s, runtime),
				preflight.DeadLetterPolicy(ps, s),
				preflight.DeadLetterAgent(ps, ps, f.Project, s))
		}
		for _, t := range []struct{ flag, name string }{
			{"--results-topic", f.ResultsTopic}, {"--errors-topic", f.ErrorsTopic}, {"--jobs-topic", f.Jobs.Topic},
		} {
			if t.name != "" {
				checks = append(checks, preflight.Topic(ps, t.flag, t.name, runtime))
			}
		}
	}

	if buckets := allowBuckets(f.Policy.Allow); len(buckets) > 0 {
		gcs, err := storageClient(ctx, env)
		if err != nil {
			checks = append(checks, preflight.StorageClient(err))
		} else {
			defer gcs.Close()
			for _, b := range buckets {
				checks = append(checks, preflight.Bucket(preflight.GCS{Client: gcs}, b, runtime))
			}
		}
	}

	if q := &f.Cred.Keyless.Fleet; q.URL != "" {
		id := app.ProbeID()
		checks = append(checks, preflight.QuotaFleet(func(ctx context.Context) error {
			return app.ProbeFleet(ctx, q, id)
		}, q.URL, runtime))
	}

	results = append(results, preflight.Run(ctx, timeout, checks...)...)
	if err := preflight.Write(env.Stdout, results); err != nil {
		return ExitFailure
	}
	if preflight.Err(results) != nil {
		return ExitFailure
	}
	return ExitOK
}

// allowBuckets returns the bucket of each --allow rule, once each, leaving
// out rules whose bucket is a glob.
func allowBuckets(allow string) []string {
	var out []string
	seen := map[string]bool{}
	for _, rule := range splitList(allow) {
		b, _, _ := strings.Cut(rule, "/")
		if b == "" || strings.ContainsAny(b, "*?[") || seen[b] {
			continue
		}
		seen[b] = true
		out = append(out, b)
	}
	return out
}
