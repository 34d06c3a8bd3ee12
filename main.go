// Command linkissuer issues short-lived signed URLs for Google Cloud Storage
// and S3-compatible stores: one at a time from the command line, in bulk, or
// as a Pub/Sub worker.
//
// main is the composition root: it picks the subcommand, gives it a context
// that is cancelled on SIGINT/SIGTERM, and turns its error into an exit code.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkissuer/linkissuer/cli"
)

// commands maps each subcommand to its entry point.
var commands = map[string]cli.Command{
	"sign":    cli.Sign,
	"form":    cli.Form,
	"version": cli.Version,
	"worker":  cli.Worker,
	"serve":   cli.Serve,
	"emulate": cli.Emulate,
	"export":  cli.Export,
	"submit":  cli.Submit,
	"verify":  cli.Verify,
	"revoke":  cli.Revoke,
	"demo":    cli.Demo,
	"dev":     cli.Dev,
	"bench":   cli.Bench,
	"doctor":  cli.Doctor,
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	if os.Args[1] == "--version" || os.Args[1] == "-version" {
		os.Args[1] = "version"
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "linkissuer: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(cmd(ctx, env, os.Args[2:]))
}

func usage() {
	fmt.Fprint(os.Stderr, `linkissuer issues short-lived signed URLs for GCS and S3-compatible stores.

Usage: linkissuer COMMAND [flags]

Commands:
  sign       sign gs://BUCKET/OBJECT or s3://BUCKET/KEY URLs (one, many, or --from-file)
  worker     pull GCS notifications and job messages from Pub/Sub, publish links
  serve      push mode (Cloud Run): Pub/Sub push, Eventarc CloudEvents, POST /v1/links
  emulate    run a local stand-in: "emulate iam" serves IAM Credentials signBlob for keyless signing
  export     bulk export here: sign every object under gs://BUCKET/PREFIX into a JSONL or CSV manifest
  submit     publish a bulk export job (linkissuer.job.v1) for the workers to run, sharded
  form       sign a POST policy: an HTML upload form with size, key and type limits (JSON or a page)
  verify     decode a signed URL and check it: valid, expired, not yet valid, tampered or unknown key
  revoke     take durable links back: add a token, object, prefix or "issued before" to the revocation list
  demo       the whole pipeline on this machine, no cloud account: events -> worker -> signed links
  dev        run the local stack (Pub/Sub, Cloud Storage, IAM stand-ins) and print what to export
  doctor     check a deployment: signer, topics, subscriptions, dead-letter policy, buckets; a fix per failure
  version    print the module version and VCS revision (also --version)
  bench      measure IAM signBlob in this project (latency, the 429 point) and print settings that fit (spends quota: --yes)

Run "linkissuer COMMAND -h" for a command's flags.
`)
}
