package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/schema"
)

const submitUsage = `Usage: linkissuer submit --topic TOPIC --project P gs://BUCKET[/PREFIX] --manifest gs://OUT/PATH [flags]
       linkissuer submit --topic TOPIC --project P s3://BUCKET[/PREFIX] --s3-region R [--s3-endpoint URL] --manifest s3://OUT/KEY|gs://OUT/PATH [flags]
       linkissuer submit --topic TOPIC --project P --file JOB.json   (- for stdin)

Publishes a bulk export job (linkissuer.job.v1) to the jobs topic that
"linkissuer worker" pulls from, built from the flags or read as JSON, and
validated with the same strict decoder the worker uses before it is sent.
Prints the job ID and the Pub/Sub message ID. --dry-run prints the message
instead. PUBSUB_EMULATOR_HOST points the client at an emulator.`

// submitFlags is the parsed command line of `linkissuer submit`.
type submitFlags struct {
	job     jobFlags
	topic   string
	project string
	file    string
	dryRun  bool
	// submitter is the job's submitter, unless a --file job names one.
	submitter string
}

// Submit implements `linkissuer submit`.
func Submit(ctx context.Context, env Env, args []string) int {
	var f submitFlags
	fs := newFlagSet(env, "submit", submitUsage)
	f.job.register(fs, env)
	f.job.topicOutput = true
	fs.StringVar(&f.job.notifyTopic, "notify-topic", "", "topic (ID or full name) for the completion message (linkissuer.job_done.v1)")
	fs.StringVar(&f.job.outputTopic, "output-topic", "", "publish one linkissuer.link.v1 per object to this topic (ID or full name) instead of writing a manifest")
	fs.StringVar(&f.topic, "topic", envString(env, "LINKISSUER_JOBS_TOPIC", ""), "jobs topic, ID or full name [$LINKISSUER_JOBS_TOPIC]")
	fs.StringVar(&f.project, "project", envString(env, "LINKISSUER_PROJECT", envString(env, "GOOGLE_CLOUD_PROJECT", "")), "Google Cloud project [$LINKISSUER_PROJECT, $GOOGLE_CLOUD_PROJECT]")
	fs.StringVar(&f.file, "file", "", "read the job message (JSON) from FILE, - for stdin, instead of building it from flags")
	fs.StringVar(&f.job.s3Endpoint, "s3-endpoint", envString(env, "LINKISSUER_S3_ENDPOINT", ""), "an s3:// source's endpoint, http(s)://host[:port] (empty: AWS) [$LINKISSUER_S3_ENDPOINT]")
	fs.StringVar(&f.job.s3Region, "s3-region", envString(env, "LINKISSUER_S3_REGION", ""), "an s3:// source's region [$LINKISSUER_S3_REGION]")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the validated message and its attributes; publish nothing")
	fs.StringVar(&f.submitter, "submitter", callerAccount(env), "who submits the job, copied into the audit record of every row it signs (default $LINKISSUER_SUBMITTER, else the caller's account: $CLOUDSDK_CORE_ACCOUNT, the service account of $GOOGLE_APPLICATION_CREDENTIALS, or gcloud's active account)")
	positional, err := parseFlagsInterspersed(fs, env, args)
	if err != nil {
		return ExitUsage
	}
	data, job, err := f.message(ctx, env, positional)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer submit: %v\n", err)
		return ExitUsage
	}
	if job.Output.Topic != "" {
		fmt.Fprintln(env.Stderr, "linkissuer submit: note: a topic-output job keeps its markers and error rows under the worker's $LINKISSUER_JOBS_STATE (gs://BUCKET/PREFIX); a worker without it dead-letters the job")
	}
	if f.dryRun {
		out, _ := json.Marshal(map[string]any{"attributes": job.Attributes(), "data": json.RawMessage(data)})
		fmt.Fprintln(env.Stdout, string(out))
		return ExitOK
	}
	if f.topic == "" || f.project == "" {
		fmt.Fprintln(env.Stderr, "linkissuer submit: --topic and --project are required")
		return ExitUsage
	}
	id, err := publishJob(ctx, f.project, f.topic, data, job)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer submit: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(env.Stdout, "submitted job %s as message %s\n", job.JobID, id)
	return ExitOK
}

// message returns the job's wire form, checked by schema.ParseJob exactly
// as the worker will decode it.
func (f *submitFlags) message(ctx context.Context, env Env, positional []string) ([]byte, *schema.Job, error) {
	var data []byte
	if f.file != "" {
		if len(positional) > 0 {
			return nil, nil, fmt.Errorf("give --file or a gs:// source, not both")
		}
		var r io.Reader = env.Stdin
		if f.file != "-" {
			fh, err := os.Open(f.file)
			if err != nil {
				return nil, nil, err
			}
			defer fh.Close()
			r = fh
		}
		var err error
		if data, err = io.ReadAll(io.LimitReader(r, schema.MaxMessageBytes+1)); err != nil {
			return nil, nil, err
		}
	} else {
		if len(positional) != 1 {
			return nil, nil, fmt.Errorf("give one gs://BUCKET[/PREFIX] source, or --file")
		}
		f.job.notifyTopic = f.fullTopic(f.job.notifyTopic)
		f.job.outputTopic = f.fullTopic(f.job.outputTopic)
		job, err := f.job.build(env, positional[0], time.Now())
		if err != nil {
			return nil, nil, err
		}
		if data, err = json.Marshal(job); err != nil {
			return nil, nil, err
		}
	}
	job, err := schema.ParseJob(ctx, data)
	if err != nil {
		return nil, nil, err
	}
	if job.Submitter == "" && f.submitter != "" {
		job.Submitter = f.submitter
		if data, err = json.Marshal(job); err != nil {
			return nil, nil, err
		}
		if job, err = schema.ParseJob(ctx, data); err != nil {
			return nil, nil, err
		}
	}
	return data, job, nil
}

// callerAccount is who runs the command, as far as the environment says
// without a network call: $LINKISSUER_SUBMITTER, $CLOUDSDK_CORE_ACCOUNT,
// the client_email of a service-account key in
// $GOOGLE_APPLICATION_CREDENTIALS, or the account of gcloud's active
// configuration; "" when none is known.
func callerAccount(env Env) string {
	for _, v := range []string{"LINKISSUER_SUBMITTER", "CLOUDSDK_CORE_ACCOUNT"} {
		if a := env.Getenv(v); a != "" {
			return a
		}
	}
	if file := env.Getenv("GOOGLE_APPLICATION_CREDENTIALS"); file != "" {
		var k struct {
			ClientEmail string `json:"client_email"`
		}
		if data, err := os.ReadFile(file); err == nil && json.Unmarshal(data, &k) == nil && k.ClientEmail != "" {
			return k.ClientEmail
		}
	}
	dir := env.Getenv("CLOUDSDK_CONFIG")
	if dir == "" {
		home := env.Getenv("HOME")
		if home == "" {
			return ""
		}
		dir = filepath.Join(home, ".config", "gcloud")
	}
	name := "default"
	if data, err := os.ReadFile(filepath.Join(dir, "active_config")); err == nil && strings.TrimSpace(string(data)) != "" {
		name = strings.TrimSpace(string(data))
	}
	data, err := os.ReadFile(filepath.Join(dir, "configurations", "config_"+name))
	if err != nil {
		return ""
	}
	section := ""
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "core" && strings.TrimSpace(k) == "account" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// fullTopic expands a topic ID to projects/PROJECT/topics/ID.
func (f *submitFlags) fullTopic(t string) string {
	if t == "" || strings.HasPrefix(t, "projects/") {
		return t
	}
	return "projects/" + f.project + "/topics/" + t
}

// publishJob publishes one job message and waits for the server's
// confirmation.
func publishJob(ctx context.Context, project, topic string, data []byte, job *schema.Job) (string, error) {
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return "", fmt.Errorf("pubsub client: %w", err)
	}
	defer client.Close()
	pub := client.Publisher(topic)
	defer pub.Stop()
	id, err := pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: job.Attributes()}).Get(ctx)
	if err != nil {
		return "", fmt.Errorf("publish to %s: %w", topic, err)
	}
	return id, nil
}
