package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/durable"
	"github.com/linkissuer/linkissuer/worker"
)

const serveUsage = `Usage: linkissuer serve --results-topic T --errors-topic T --allow RULES --push-emails SA[,SA] [flags]

Push mode for Cloud Run: POST /pubsub/push takes Pub/Sub push deliveries,
POST /events takes Eventarc CloudEvents, POST /v1/links (--sync-links) issues
links synchronously, one or a batch of up to 1000; POST /v1/durable-links and
GET /l/TOKEN (--durable-links) mint and follow durable links. Requests must carry a
Google-signed OIDC token from one of --push-emails for one of --audiences.
The status code tells Pub/Sub whether to redeliver. Also serves /healthz, /readyz and /metrics.`

// Serve implements `linkissuer serve` (push mode).
func Serve(ctx context.Context, env Env, args []string) int {
	var f serviceFlags
	var emails, audiences string
	var insecure, syncLinks bool
	var handlerTimeout time.Duration
	var d durableFlags
	fs := newFlagSet(env, "serve", serveUsage)
	f.register(fs, env)
	d.register(fs, env)
	fs.StringVar(&emails, "push-emails", envString(env, "LINKISSUER_PUSH_EMAILS", ""), "comma-separated service accounts whose push/Eventarc tokens are accepted [$LINKISSUER_PUSH_EMAILS]")
	fs.StringVar(&audiences, "audiences", envString(env, "LINKISSUER_AUDIENCES", ""), "comma-separated accepted token audiences (the push endpoint URL) [$LINKISSUER_AUDIENCES]")
	fs.BoolVar(&insecure, "insecure-skip-auth", false, "accept requests without a token (local use against emulators only)")
	fs.BoolVar(&syncLinks, "sync-links", envString(env, "LINKISSUER_SYNC_LINKS", "") == "true", "serve POST /v1/links [$LINKISSUER_SYNC_LINKS=true]")
	fs.DurationVar(&handlerTimeout, "handler-timeout", envDuration(env, "LINKISSUER_HANDLER_TIMEOUT", 30*time.Second), "bound on one delivery's processing (keep under the ack deadline) [$LINKISSUER_HANDLER_TIMEOUT]")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if err := d.check(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	if err := checkPushEmails(splitList(emails), insecure); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	svc, err := f.build(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	defer svc.close()
	opts := &worker.PushOptions{
		Audiences:        splitList(audiences),
		AllowedEmails:    splitList(emails),
		InsecureSkipAuth: insecure,
		HandlerTimeout:   handlerTimeout,
		Logger:           svc.log,
		Project:          f.project,
		Metrics:          worker.NewHTTPMetrics(svc.registry),
	}
	if syncLinks {
		issuer := &worker.SyncIssuer{Links: svc.links}
		if svc.storage != nil {
			issuer.Objects = worker.GCSObjects{Client: svc.storage}
		}
		opts.Links = issuer
	}
	push, err := worker.NewPushServer(svc.router, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	mux := worker.NewOpsMux(svc.ready.Check, svc.registry)
	for _, route := range []string{"/pubsub/push", "/events", "/v1/links"} {
		mux.Handle(route, push)
	}
	if d.enabled {
		links, err := d.server(svc, push)
		if err != nil {
			fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
			return ExitUsage
		}
		mux.Handle(durable.PathMint, links)
		mux.Handle(durable.PathClick, links)
	}
	done := svc.serveHTTP(ctx, f.addr, mux)
	svc.ready.Set(nil)
	<-ctx.Done()
	svc.ready.Set(errors.New("shutting down"))
	<-done // in-flight requests finish within the grace period
	svc.publisher.Stop()
	svc.log.Info("serve stopped")
	return ExitOK
}

// checkPushEmails says, in flag names, what worker.PushOptions.Validate
// would refuse about the accepted token emails.
func checkPushEmails(emails []string, insecure bool) error {
	if len(emails) == 0 && !insecure {
		return errors.New("--push-emails is empty: name the service accounts of the push subscription and of the Eventarc trigger ($LINKISSUER_PUSH_EMAILS), or give --insecure-skip-auth for local use against emulators")
	}
	for _, e := range emails {
		if !strings.Contains(e, "@") {
			return fmt.Errorf("--push-emails: %q is not an email", e)
		}
	}
	return nil
}
