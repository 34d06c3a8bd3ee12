package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
)

const emulateUsage = `Usage: linkissuer emulate iam [flags]

Runs a local IAM Credentials API (signBlob and the public-key endpoints) for
developing and testing keyless signing without a Google project. Point
"linkissuer sign --iam-endpoint" at the endpoint it prints. Faults (latency,
quota, 5xx, hangs, transient 403s) are injected on purpose; they are drawn
from --seed. Every flag has an environment default (LINKISSUER_IAM_*).`

// Emulate runs "linkissuer emulate iam": the IAM Credentials emulator, until
// ctx is cancelled.
func Emulate(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 || args[0] != "iam" {
		fmt.Fprintln(env.Stderr, emulateUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return ExitOK
		}
		return ExitUsage
	}
	fs := newFlagSet(env, "emulate iam", emulateUsage)
	var (
		addr       = fs.String("addr", envString(env, "LINKISSUER_IAM_ADDR", "127.0.0.1:8085"), "`host:port` to listen on (port 0: any free port) [LINKISSUER_IAM_ADDR]")
		latency    = fs.Duration("latency", envDuration(env, "LINKISSUER_IAM_LATENCY", 50*time.Millisecond), "mean answer latency [LINKISSUER_IAM_LATENCY]")
		jitter     = fs.Duration("jitter", envDuration(env, "LINKISSUER_IAM_JITTER", 10*time.Millisecond), "latency spread, uniform ± [LINKISSUER_IAM_JITTER]")
		quota      = fs.Float64("quota", envFloat(env, "LINKISSUER_IAM_QUOTA", 1000), "signBlob calls admitted per second, 0 for no quota; above it: 429 RESOURCE_EXHAUSTED [LINKISSUER_IAM_QUOTA]")
		burst      = fs.Int("burst", envInt(env, "LINKISSUER_IAM_BURST", 0), "quota bucket depth (default: one second of quota) [LINKISSUER_IAM_BURST]")
		window     = fs.Duration("quota-window", envDuration(env, "LINKISSUER_IAM_QUOTA_WINDOW", 0), "count the quota in fixed windows of this length (1m: quota×60 per minute, reset on the minute) instead of a token bucket [LINKISSUER_IAM_QUOTA_WINDOW]")
		errorRate  = fs.Float64("error-rate", envFloat(env, "LINKISSUER_IAM_ERROR_RATE", 0), "share of calls answered 500, 502 or 503 [LINKISSUER_IAM_ERROR_RATE]")
		hangRate   = fs.Float64("hang-rate", envFloat(env, "LINKISSUER_IAM_HANG_RATE", 0), "share of calls held until the client gives up [LINKISSUER_IAM_HANG_RATE]")
		hangMax    = fs.Duration("hang-max", envDuration(env, "LINKISSUER_IAM_HANG_MAX", time.Minute), "longest hang, then 504 [LINKISSUER_IAM_HANG_MAX]")
		deniedRate = fs.Float64("denied-rate", envFloat(env, "LINKISSUER_IAM_DENIED_RATE", 0), "share of calls answered the transient 403 signBlob denial [LINKISSUER_IAM_DENIED_RATE]")
		keyFile    = fs.String("key-file", envString(env, "LINKISSUER_IAM_KEY_FILE", ""), "service-account JSON key to sign with (default: a generated RSA-2048 key) [LINKISSUER_IAM_KEY_FILE]")
		email      = fs.String("email", envString(env, "LINKISSUER_IAM_EMAIL", ""), "service account served (default: the key file's, else "+emulator.DefaultEmail+") [LINKISSUER_IAM_EMAIL]")
		seed       = fs.Uint64("seed", envUint(env, "LINKISSUER_IAM_SEED", 1), "seed of the latency and fault draws [LINKISSUER_IAM_SEED]")
	)
	if err := parseFlags(fs, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "emulate iam: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	opts := &emulator.Options{
		Email: *email, Latency: *latency, Jitter: *jitter, Quota: *quota, Burst: *burst, Window: *window,
		ErrorRate: *errorRate, HangRate: *hangRate, HangMax: *hangMax, DeniedRate: *deniedRate, Seed: *seed,
	}
	if *keyFile != "" {
		k, err := emulator.ReadKeyFile(*keyFile)
		if err != nil {
			fmt.Fprintf(env.Stderr, "emulate iam: %v\n", err)
			return ExitUsage
		}
		opts.Key, opts.KeyID = k.Key, k.KeyID
		if opts.Email == "" {
			opts.Email = k.Email
		}
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(env.Stderr, "emulate iam: %v\n", err)
		return ExitUsage
	}
	srv, err := emulator.Start(*addr, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "emulate iam: %v\n", err)
		return ExitFailure
	}
	printEmulator(env, srv, opts)

	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Close(closeCtx); err != nil {
		fmt.Fprintf(env.Stderr, "emulate iam: shutting down: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(env.Stdout, "IAM Credentials emulator stopped")
	return ExitOK
}

// printEmulator prints the start-up banner in one write, so that a reader
// that sees its first line sees all of it.
func printEmulator(env Env, srv *emulator.Server, o *emulator.Options) {
	w := &bytes.Buffer{}
	defer func() { env.Stdout.Write(w.Bytes()) }()
	fmt.Fprintf(w, "IAM Credentials emulator listening on %s\n", srv.Addr())
	fmt.Fprintf(w, "  endpoint:        %s   (linkissuer sign --iam-endpoint %s --service-account %s)\n", srv.Endpoint(), srv.Endpoint(), srv.Email())
	fmt.Fprintf(w, "  service account: %s\n", srv.Email())
	fmt.Fprintf(w, "  key id:          %s\n", srv.KeyID())
	fmt.Fprintf(w, "  public keys:     %s/service_accounts/v1/metadata/x509/%s (and /jwk/)\n", srv.URL(), srv.Email())
	quota := "none"
	if o.Quota > 0 {
		burst := o.Burst
		if burst == 0 {
			burst = max(1, int(o.Quota))
		}
		quota = fmt.Sprintf("%g/s (burst %d)", o.Quota, burst)
		if o.Window > 0 {
			quota = fmt.Sprintf("%d per %s (fixed window)", int64(o.Quota*o.Window.Seconds()), o.Window)
		}
	}
	fmt.Fprintf(w, "  faults:          latency %s ± %s, quota %s, 5xx %g%%, hangs %g%% (max %s), transient 403 %g%%, seed %d\n",
		o.Latency, o.Jitter, quota, 100*o.ErrorRate, 100*o.HangRate, o.HangMax, 100*o.DeniedRate, o.Seed)
	if srv.Generated() {
		fmt.Fprintf(w, "  generated key; its public half:\n%s", emulator.PublicKeyPEM(srv.PublicKey()))
	}
}
