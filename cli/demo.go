package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"

	"github.com/linkissuer/linkissuer/internal/localstack"
	"github.com/linkissuer/linkissuer/schema"
)

const demoUsage = `Usage: linkissuer demo [flags]

Runs the whole linkissuer pipeline on this machine, with local stand-ins for
Google Cloud (no account, no network), and explains each step: uploads to a
bucket become Pub/Sub notifications, the worker (the same code as "linkissuer
worker") signs a link for each one keyless through IAM signBlob and publishes
it, a bulk export job writes a manifest of links for the whole bucket, the
links download over HTTP, "linkissuer verify" refuses altered and expired
links, and a malformed message lands on the errors topic with its reason. It
exits 0 when every step showed what it should. Signed URLs are credentials:
the demo prints its links because they are local and short-lived.`

// demoObject is one upload of the demo.
type demoObject struct {
	name, contentType, content string
}

// demoObjects has one awkward name: spaces, non-ASCII letters, '+' and an
// en dash, which must survive notification, signing and download intact.
var demoObjects = []demoObject{
	{"hello.txt", "text/plain; charset=utf-8", "Hello from linkissuer!\n"},
	{"reports/2026 Q3 – Zürich+Genève.pdf", "application/pdf", "%PDF-1.7\n% a tiny stand-in for a quarterly report\n"},
	{"photos/cat.jpg", "image/jpeg", "\xff\xd8\xff\xe0 not really a cat\n"},
	{"exports/orders-2026-11.csv", "text/csv", "order_id,total\n1001,19.90\n1002,5.00\n"},
}

// demoAwkward is the object fetched and verified in the later steps.
const demoAwkward = 1

// Demo implements `linkissuer demo`.
func Demo(ctx context.Context, env Env, args []string) int {
	var f devFlags
	fs := newFlagSet(env, "demo", demoUsage)
	f.register(fs, "linkissuer-demo", "demo-media", 50*time.Millisecond)
	keep := fs.Bool("keep-running", false, "after the script, keep the stack and the worker running (printing new links) until Ctrl-C")
	printEnv := fs.Bool("print-env", false, "print the stack's addresses as shell exports once it is up")
	timeout := fs.Duration("timeout", time.Minute, "bound on the scripted part")
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "linkissuer demo: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	opts := f.options(env.Stderr)
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer demo: %v\n", err)
		return ExitUsage
	}
	d := &demoRun{env: env, w: env.Stdout, verbose: f.verbose, start: time.Now(), issued: map[string]*schema.Link{}}
	fmt.Fprintln(d.w, "linkissuer demo: the whole pipeline on this machine, with local stand-ins for Google Cloud.")

	script, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	d.step("Starting the local stack")
	st, err := localstack.Start(script, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer demo: %v\n", err)
		return ExitFailure
	}
	d.st = st
	code := d.run(ctx, script, *printEnv, *keep)
	if c := closeStack(Env{Stdout: io.Discard, Stderr: env.Stderr}, "linkissuer demo", st); code == ExitOK {
		code = c
	}
	return code
}

// demoRun is one run of the demo script. Only the goroutine running the
// script writes to w.
type demoRun struct {
	env     Env
	w       io.Writer
	verbose bool
	start   time.Time
	st      *localstack.Stack
	n       int // current step

	links      chan *schema.Link
	deadLetter chan *schema.DeadLetter
	// watchFailed receives the error of a watcher whose Receive failed.
	watchFailed chan error
	issued      map[string]*schema.Link

	workerLog  lockedBuffer
	workerDone chan struct{} // closed when the worker has returned
	workerCode int           // its exit code, once workerDone is closed
}

func (d *demoRun) step(title string) {
	d.n++
	fmt.Fprintf(d.w, "\n%d. %s\n", d.n, title)
}

func (d *demoRun) say(format string, a ...any) {
	fmt.Fprintf(d.w, "   "+format+"\n", a...)
}

// run is the script after the stack is up. The worker and the watchers
// live under ctx (and the script's deadline until the script is done);
// run stops them before it returns.
func (d *demoRun) run(ctx, script context.Context, printEnv, keep bool) int {
	st := d.st
	d.say("Pub/Sub          %s at %s", st.PubSubKind, st.PubSubHost)
	d.say("Cloud Storage    fake-gcs-server at %s, bucket %s", st.StorageHost, st.Bucket)
	d.say("                 notification config: OBJECT_FINALIZE -> topic %s", st.Topology.Notifications)
	d.say("IAM Credentials  emulator at %s, signBlob as %s (keyless, like Cloud Run)", st.IAM.Endpoint(), st.IAM.Email())
	d.say("subscription %s has a dead-letter topic (%s, after 5 failed deliveries)", st.Topology.WorkerSubscription, st.Topology.DeadLetter)
	if printEnv {
		printStackEnv(indent{d.w}, st)
	}

	// The worker and the watchers live under life: the script's deadline
	// bounds them, unless the stack keeps running after the script.
	parent := script
	if keep {
		parent = ctx
	}
	life, stop := context.WithCancel(parent)
	var watchers sync.WaitGroup
	defer func() {
		stop()
		d.stopWorker()
		watchers.Wait()
	}()
	d.links = make(chan *schema.Link, 64)
	d.deadLetter = make(chan *schema.DeadLetter, 8)
	d.watchFailed = make(chan error, 2)
	watchers.Add(2)
	go func() {
		defer watchers.Done()
		if err := watch(life, st.PubSub.Subscriber(st.Topology.ResultsSubscription), d.links, decodeJSON[schema.Link]); err != nil {
			d.watchFailed <- err
		}
	}()
	go func() {
		defer watchers.Done()
		if err := watch(life, st.PubSub.Subscriber(st.Topology.ErrorsSubscription), d.deadLetter, decodeJSON[schema.DeadLetter]); err != nil {
			d.watchFailed <- err
		}
	}()

	steps := []func(context.Context) error{d.startWorker(life), d.upload, d.export, d.fetch, d.verify, d.malformed}
	for _, s := range steps {
		if err := s(script); err != nil {
			fmt.Fprintf(d.env.Stderr, "\nlinkissuer demo: step %d failed: %v\n", d.n, err)
			if log := d.workerLog.String(); log != "" && !d.verbose {
				fmt.Fprintf(d.env.Stderr, "worker log:\n%s", log)
			}
			return ExitFailure
		}
	}
	fmt.Fprintf(d.w, "\nDone in %s: %d uploads became %d links signed keyless; a manifest exported; a link downloaded\n"+
		"and verified; an altered and an expired link refused; a malformed message dead-lettered with its reason.\n",
		time.Since(d.start).Round(100*time.Millisecond), len(demoObjects), len(d.issued))
	if !keep {
		fmt.Fprintln(d.w, `Next: "linkissuer dev" runs this stack for your own code; "linkissuer demo --keep-running" keeps this one up.`)
		return ExitOK
	}
	d.keepRunning(life)
	return ExitOK
}

// startWorker runs `linkissuer worker` in this process against the stack,
// with the flags a production deployment would set from its environment.
func (d *demoRun) startWorker(life context.Context) func(context.Context) error {
	return func(context.Context) error {
		st := d.st
		args := []string{
			"--project", st.Project,
			"--subscription", st.Topology.WorkerSubscription,
			"--results-topic", st.Topology.Results,
			"--errors-topic", st.Topology.Errors,
			"--allow", st.Bucket,
			"--service-account", st.IAM.Email(),
			"--iam-endpoint", st.IAM.Endpoint(),
			"--endpoint", st.StorageHost,
			"--addr", "127.0.0.1:0",
			"--grace", "2s",
		}
		d.step("Starting the worker, the same code as in production:")
		for i := 0; i < len(args); i += 4 {
			prefix, suffix := "    ", " \\"
			if i == 0 {
				prefix = "$ linkissuer worker "
			}
			if i+4 >= len(args) {
				suffix = ""
			}
			d.say("%s%s%s", prefix, strings.Join(args[i:min(i+4, len(args))], " "), suffix)
		}
		d.say("(the endpoints are the stand-ins; on Cloud Run they are Google's and --endpoint is not set)")
		level, logw := "warn", io.Writer(&d.workerLog)
		if d.verbose {
			level, logw = "info", d.env.Stderr
		}
		args = append(args, "--log-level", level)
		// The worker sees no environment but its flags, so that variables
		// set for real deployments cannot redirect the demo.
		wenv := Env{Stdin: strings.NewReader(""), Stdout: logw, Stderr: logw, Getenv: func(string) string { return "" }}
		d.workerDone = make(chan struct{})
		go func() {
			defer close(d.workerDone)
			d.workerCode = Worker(life, wenv, args)
		}()
		return nil
	}
}

// stopWorker waits for the worker (whose context the caller cancelled) to
// finish its shutdown.
func (d *demoRun) stopWorker() {
	if d.workerDone != nil {
		<-d.workerDone
	}
}

// upload writes the demo objects through the Cloud Storage client library,
// which finds the stand-in through STORAGE_EMULATOR_HOST, and prints each
// link as the worker publishes it.
func (d *demoRun) upload(ctx context.Context) error {
	d.step(fmt.Sprintf("Uploading %d objects; each upload is a notification, each notification a signed link:", len(demoObjects)))
	gcs, err := storage.NewClient(ctx)
	if err != nil {
		return err
	}
	defer gcs.Close()
	want := map[string]bool{}
	for _, o := range demoObjects {
		w := gcs.Bucket(d.st.Bucket).Object(o.name).NewWriter(ctx)
		w.ContentType = o.contentType
		if _, err := io.WriteString(w, o.content); err != nil {
			w.Close()
			return fmt.Errorf("upload %q: %w", o.name, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("upload %q: %w", o.name, err)
		}
		d.say("uploaded gs://%s/%s (%d bytes)", d.st.Bucket, o.name, len(o.content))
		want[o.name] = true
	}
	d.say("")
	d.say("links published on topic %s:", d.st.Topology.Results)
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for len(want) > 0 {
		select {
		case l := <-d.links:
			d.printLink(l)
			delete(want, l.Object)
		case <-d.workerDone:
			return fmt.Errorf("the worker stopped (exit code %d)", d.workerCode)
		case err := <-d.watchFailed:
			return fmt.Errorf("watching the outputs: %w", err)
		case <-timer.C:
			return fmt.Errorf("no link within 30s for %q", sortedKeys(want))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// seen reports whether l was printed already.
func (d *demoRun) seen(l *schema.Link) bool {
	prev, ok := d.issued[l.Object]
	return ok && prev.Generation == l.Generation
}

// printLink prints a link the first time it is seen: Pub/Sub delivers at
// least once, so a consumer drops repeats, as it would by dedupe_key.
func (d *demoRun) printLink(l *schema.Link) {
	if d.seen(l) {
		return
	}
	d.issued[l.Object] = l
	d.say("  %s  (generation %d, %d bytes, %s, expires %s)", l.Object, l.Generation, l.Size, l.ContentType, l.ExpiresAt.Format("15:04:05 MST"))
	d.say("    %s", l.URL)
}

// fetch downloads the awkwardly named object through its link over plain
// HTTP, as a browser or curl would, and compares the bytes.
func (d *demoRun) fetch(ctx context.Context) error {
	o := demoObjects[demoAwkward]
	l := d.issued[o.name]
	d.step("Downloading through a link over plain HTTP, as a browser or curl would:")
	path, _, _ := strings.Cut(l.URL, "?")
	d.say("GET %s?X-Goog-Algorithm=…&X-Goog-Signature=…", path)
	req, err := http.NewRequestWithContext(ctx, l.HTTPMethod, l.URL, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	d.say("%s, %d bytes, Content-Type %s", resp.Status, len(body), resp.Header.Get("Content-Type"))
	d.say("%q", body)
	if resp.StatusCode != http.StatusOK || string(body) != o.content {
		return fmt.Errorf("GET %s: %s, %d bytes: not the uploaded content", o.name, resp.Status, len(body))
	}
	d.say("the bytes are the ones uploaded (fake-gcs-server does not check signatures; verify does, next)")
	return nil
}

var expiresParam = regexp.MustCompile(`X-Goog-Expires=\d+`)

// verify runs `linkissuer verify` in this process on the link as issued,
// altered and expired, against the IAM emulator's public certificates.
func (d *demoRun) verify(ctx context.Context) error {
	l := d.issued[demoObjects[demoAwkward].name]
	endpoint := d.st.IAM.Endpoint()
	d.step("Checking links with linkissuer verify, against the signer's public certificates:")
	d.say("$ linkissuer verify --iam-endpoint %s '<the link above>'", endpoint)
	out, verdict := runVerify(ctx, "--iam-endpoint", endpoint, l.URL)
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		d.say("  %s", line)
	}
	if verdict != "VALID" {
		return fmt.Errorf("the issued link is %s, want VALID", verdict)
	}
	checks := []struct {
		what, url string
		args      []string
		want      string
	}{
		{"the link with its lifetime stretched to 7 days (X-Goog-Expires=604800):",
			expiresParam.ReplaceAllString(l.URL, "X-Goog-Expires=604800"), nil, "TAMPERED"},
		{"the link pointed at another path (/photos/ instead of /reports/):",
			strings.Replace(l.URL, "/reports/", "/photos/", 1), nil, "TAMPERED"},
		{fmt.Sprintf("the link as of one minute after it expires (--at %s):", l.ExpiresAt.Add(time.Minute).Format(time.RFC3339)),
			l.URL, []string{"--at", l.ExpiresAt.Add(time.Minute).Format(time.RFC3339)}, "EXPIRED"},
	}
	for _, c := range checks {
		out, verdict := runVerify(ctx, append(append([]string{"--iam-endpoint", endpoint}, c.args...), c.url)...)
		d.say("%s", c.what)
		d.say("  %s", lineOf(out, "verdict:"))
		d.say("  %s", lineOf(out, "why:"))
		if verdict != c.want {
			return fmt.Errorf("%s verdict %s, want %s", c.what, verdict, c.want)
		}
	}
	return nil
}

// runVerify runs the verify command and returns its output and verdict.
func runVerify(ctx context.Context, args ...string) (out, verdict string) {
	var b bytes.Buffer
	Verify(ctx, Env{Stdin: strings.NewReader(""), Stdout: &b, Stderr: &b, Getenv: func(string) string { return "" }}, args)
	out = b.String()
	return out, strings.TrimSpace(strings.TrimPrefix(lineOf(out, "verdict:"), "verdict:"))
}

// lineOf returns the first line of out that starts with prefix.
func lineOf(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// malformed publishes a GCS notification whose payload is cut short and
// shows the worker's dead letter for it.
func (d *demoRun) malformed(ctx context.Context) error {
	st := d.st
	d.step("Sending a malformed notification (its JSON payload is cut short):")
	pub := st.PubSub.Publisher(st.Topology.Notifications)
	defer pub.Stop()
	id, err := pub.Publish(ctx, &pubsub.Message{
		Data: []byte(`{"kind": "storage#object", "name": "photos/dog.jpg", "bucket": "` + st.Bucket[:3]),
		Attributes: map[string]string{
			"bucketId": st.Bucket, "objectId": "photos/dog.jpg", "objectGeneration": "1700000000000000",
			"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "eventTime": time.Now().UTC().Format(time.RFC3339Nano),
			"notificationConfig": "projects/_/buckets/" + st.Bucket + "/notificationConfigs/1",
		},
	}).Get(ctx)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	d.say("published message %s to %s", id, st.Topology.Notifications)
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case dl := <-d.deadLetter:
			if dl.OriginalMessageID != id {
				continue
			}
			d.say("dead letter on topic %s (the message is acked: retrying cannot fix it):", st.Topology.Errors)
			d.say("  reason_code: %s", dl.ReasonCode)
			if dl.Field != "" {
				d.say("  field:       %s", dl.Field)
			}
			d.say("  reason:      %s", dl.Reason)
			d.say("  original:    message %s, %d bytes kept for replay", dl.OriginalMessageID, dl.OriginalSize)
			d.say("(transient failures are retried instead; after 5 deliveries Pub/Sub moves them to %s)", st.Topology.DeadLetter)
			return nil
		case <-d.workerDone:
			return fmt.Errorf("the worker stopped (exit code %d)", d.workerCode)
		case err := <-d.watchFailed:
			return fmt.Errorf("watching the outputs: %w", err)
		case <-timer.C:
			return errors.New("no dead letter within 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// keepRunning prints the stack's addresses, then every new link, until
// ctx ends.
func (d *demoRun) keepRunning(ctx context.Context) {
	fmt.Fprintln(d.w, "\nThe stack and the worker keep running; Ctrl-C stops them.")
	printStackEnv(d.w, d.st)
	fmt.Fprintf(d.w, "# Upload something and watch its link appear here:\n#   curl -s -X POST --data-binary @FILE -H 'Content-Type: text/plain' \\\n#     \"$STORAGE_EMULATOR_HOST/upload/storage/v1/b/%s/o?uploadType=media&name=NAME\" >/dev/null\n", d.st.Bucket)
	for {
		select {
		case l := <-d.links:
			if !d.seen(l) {
				fmt.Fprintln(d.w)
				d.printLink(l)
			}
		case <-d.workerDone:
			fmt.Fprintf(d.env.Stderr, "linkissuer demo: the worker stopped (exit code %d)\n", d.workerCode)
			return
		case err := <-d.watchFailed:
			fmt.Fprintf(d.env.Stderr, "linkissuer demo: watching the outputs: %v\n", err)
			return
		case <-ctx.Done():
			return
		}
	}
}

// watch receives from sub until ctx ends, acks each message, and hands
// what decode makes of it to out; messages decode refuses are dropped (the
// watch subscriptions only see the worker's own outputs). It returns
// Receive's error, nil when ctx ended.
func watch[T any](ctx context.Context, sub *pubsub.Subscriber, out chan<- *T, decode func([]byte) (*T, error)) error {
	err := sub.Receive(ctx, func(ctx context.Context, m *pubsub.Message) {
		m.Ack()
		v, err := decode(m.Data)
		if err != nil {
			return
		}
		select {
		case out <- v:
		case <-ctx.Done():
		}
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("receive from %s: %w", sub, err)
	}
	return nil
}

func decodeJSON[T any](data []byte) (*T, error) {
	v := new(T)
	return v, json.Unmarshal(data, v)
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// indent writes each line three spaces in, under a demo step.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString("   " + l)
		}
	}
	if _, err := io.WriteString(i.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes and reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // bounded: keep the start, where failures show
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
