package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/cli"
	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/localstack"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/schema"
)

// childEnv makes the test binary run `linkissuer worker` with its
// arguments instead of the tests: the worker under test is a real process
// that kill -9 ends.
const childEnv = "LINKISSUER_CHAOS_CHILD"

// fullEnv enables the long scenarios.
const fullEnv = "LINKISSUER_CHAOS_FULL"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "worker" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
		code := cli.Worker(ctx, env, os.Args[1:])
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

const (
	srcBucket     = "chaos-src"
	exportsBucket = "chaos-exports"
	// eventBucket is the bucket the synthetic notifications name.
	eventBucket = "chaos-events"
)

// rigOptions shape one scenario's stack.
type rigOptions struct {
	// real runs Google's Pub/Sub emulator instead of pstest.
	real bool
	// iam injects signBlob faults.
	iam *iamemu.Options
}

// rig is one scenario's local stack, with a TCP proxy between the workers
// and Pub/Sub (to cut it) and an HTTP proxy between the workers and Cloud
// Storage (to fail writes and composes), the workers it started, and a
// consumer that records every link and completion on the results topic.
type rig struct {
	t       *testing.T
	st      *localstack.Stack
	pubsub  *tcpProxy
	storage *faultProxy
	logDir  string
	extra   []string // environment of the next workers

	mu      sync.Mutex
	links   map[string]int // dedupe_key -> deliveries
	done    map[string]int // job_id -> completions
	workers []*exec.Cmd
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logw io.Writer
	st, err := localstack.Start(ctx, &localstack.Options{RealPubSub: o.real, IAM: o.iam, Log: logw})
	if errors.Is(err, pubsubemu.ErrNotInstalled) {
		t.Skipf("Google's Pub/Sub emulator: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, st: st, logDir: t.TempDir(), links: map[string]int{}, done: map[string]int{}}
	t.Cleanup(func() {
		r.stopWorkers()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := st.Close(cctx); err != nil {
			t.Logf("closing the stack: %v", err)
		}
	})
	for _, b := range []string{srcBucket, exportsBucket} {
		st.Storage.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	if r.pubsub, err = newTCPProxy(st.PubSubHost); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.pubsub.close)
	r.storage = newFaultProxy(t, st.StorageHost)
	r.consume()
	return r
}

// consume records the results topic until the test ends.
func (r *rig) consume() {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	r.t.Cleanup(func() { cancel(); <-stopped })
	sub := r.st.PubSub.Subscriber(r.st.Topology.ResultsSubscription)
	sub.ReceiveSettings.MaxOutstandingMessages = 10000
	go func() {
		defer close(stopped)
		err := sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			r.mu.Lock()
			defer r.mu.Unlock()
			switch m.Attributes[schema.AttrSchema] {
			case schema.LinkV1:
				r.links[m.Attributes[schema.AttrDedupeKey]]++
			case schema.JobDoneV1:
				r.done[m.Attributes[schema.AttrJobID]]++
			}
		})
		if err != nil && ctx.Err() == nil {
			r.t.Errorf("consume results: %v", err)
		}
	}()
}

// startWorker starts `linkissuer worker` on subscription as a child
// process, through the proxies.
func (r *rig) startWorker(subscription string) *exec.Cmd {
	r.t.Helper()
	t := r.st.Topology
	cmd := exec.Command(os.Args[0], "--subscription", subscription, "--addr", "127.0.0.1:0", "--grace", "2s")
	cmd.Env = append(os.Environ(),
		childEnv+"=worker",
		"GOOGLE_CLOUD_PROJECT="+r.st.Project,
		localstack.EnvPubSub+"="+r.pubsub.addr(),
		localstack.EnvStorage+"="+r.storage.url(),
		"LINKISSUER_IAM_ENDPOINT="+r.st.IAM.Endpoint(),
		"LINKISSUER_SERVICE_ACCOUNT="+r.st.IAM.Email(),
		"LINKISSUER_RESULTS_TOPIC="+t.Results,
		"LINKISSUER_ERRORS_TOPIC="+t.Errors,
		"LINKISSUER_JOBS_TOPIC="+t.Jobs,
		"LINKISSUER_ALLOW="+strings.Join([]string{srcBucket, exportsBucket, eventBucket}, ","),
		"LINKISSUER_LOG_LEVEL=info",
	)
	cmd.Env = append(cmd.Env, r.extra...)
	logf, err := os.Create(filepath.Join(r.logDir, fmt.Sprintf("worker-%d.log", len(r.workers))))
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.workers = append(r.workers, cmd)
	r.mu.Unlock()
	go func() {
		_ = cmd.Wait() // reaped here; exit status read from ProcessState
		logf.Close()
	}()
	return cmd
}

// kill ends a worker with SIGKILL: no grace, no nacks, no flush.
func (r *rig) kill(cmd *exec.Cmd) {
	r.t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatalf("kill -9 %d: %v", cmd.Process.Pid, err)
	}
}

func (r *rig) stopWorkers() {
	r.mu.Lock()
	workers := r.workers
	r.mu.Unlock()
	for _, c := range workers {
		_ = c.Process.Signal(syscall.SIGKILL) // fails for the already dead
	}
	if r.t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(r.logDir, "*.log"))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			if len(data) > 4000 {
				data = data[len(data)-4000:]
			}
			r.t.Logf("%s (tail):\n%s", filepath.Base(l), data)
		}
	}
}

// counts returns distinct links, link deliveries and completions of job.
func (r *rig) counts(job string) (distinct, total, done int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.links {
		total += n
	}
	return len(r.links), total, r.done[job]
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// publishEvents publishes n OBJECT_FINALIZE notifications, shaped as GCS
// sends them, for objects prefix00000... of eventBucket.
func (r *rig) publishEvents(prefix string, n int) {
	r.t.Helper()
	pub := r.st.PubSub.Publisher(r.st.Topology.Notifications)
	defer pub.Stop()
	pub.PublishSettings.DelayThreshold = time.Millisecond
	results := make([]*pubsub.PublishResult, n)
	now := time.Now().UTC()
	for i := range n {
		results[i] = pub.Publish(context.Background(), notification(fmt.Sprintf("%s%05d", prefix, i), int64(1000+i), now))
	}
	for _, res := range results {
		if _, err := res.Get(context.Background()); err != nil {
			r.t.Fatal(err)
		}
	}
}

func notification(name string, gen int64, now time.Time) *pubsub.Message {
	g := strconv.FormatInt(gen, 10)
	data, _ := json.Marshal(map[string]string{
		"kind": "storage#object", "id": eventBucket + "/" + name + "/" + g, "name": name, "bucket": eventBucket,
		"generation": g, "metageneration": "1", "contentType": "application/octet-stream", "size": "1024",
		"timeCreated": now.Format(time.RFC3339Nano), "updated": now.Format(time.RFC3339Nano), "storageClass": "STANDARD",
	})
	return &pubsub.Message{Data: data, Attributes: map[string]string{
		"bucketId": eventBucket, "objectId": name, "objectGeneration": g, "eventType": "OBJECT_FINALIZE",
		"payloadFormat": "JSON_API_V1", "eventTime": now.Format(time.RFC3339Nano),
		"notificationConfig": "projects/_/buckets/" + eventBucket + "/notificationConfigs/1",
	}}
}

// seed creates n objects in srcBucket under prefix.
func (r *rig) seed(prefix string, n int) {
	objs := make([]fakestorage.Object, n)
	for i := range n {
		objs[i] = fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: srcBucket, Name: fmt.Sprintf("%s%05d.bin", prefix, i), ContentType: "application/octet-stream"},
			Content:     []byte("x"),
		}
	}
	for _, o := range objs {
		r.st.Storage.CreateObject(o)
	}
}

// submit publishes a manifest job over srcBucket/prefix.
func (r *rig) submit(id, prefix, manifest string) {
	r.t.Helper()
	job := &schema.Job{JobID: id, Source: schema.JobSource{Bucket: srcBucket, Prefix: prefix}, Method: "GET", ExpiresIn: "1h",
		Output: schema.JobOutput{Manifest: &schema.ManifestTarget{URI: "gs://" + exportsBucket + "/" + manifest, Format: schema.FormatJSONL}}}
	data, err := json.Marshal(job)
	if err != nil {
		r.t.Fatal(err)
	}
	pub := r.st.PubSub.Publisher(r.st.Topology.Jobs)
	defer pub.Stop()
	if _, err := pub.Publish(context.Background(), &pubsub.Message{Data: data, Attributes: job.Attributes()}).Get(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// manifest reads a manifest and returns rows per object.
func (r *rig) manifest(name string) (map[string]int, error) {
	obj, err := r.st.Storage.GetObject(exportsBucket, name)
	if err != nil {
		return nil, err
	}
	rr, err := schema.NewRowReader(strings.NewReader(string(obj.Content)), schema.FormatJSONL, nil)
	if err != nil {
		return nil, err
	}
	rows := map[string]int{}
	for {
		row, err := rr.ReadRow()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows[row.Object]++
	}
}

// names lists exportsBucket under prefix.
func (r *rig) names(prefix string) []string {
	attrs, _, err := r.st.Storage.ListObjectsWithOptions(exportsBucket, fakestorage.ListOptions{Prefix: prefix})
	if err != nil {
		return nil
	}
	out := make([]string, len(attrs))
	for i, a := range attrs {
		out[i] = a.Name
	}
	return out
}

// tcpProxy forwards TCP connections to a target until cut: then it closes
// every open connection and refuses new ones until resumed.
type tcpProxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newTCPProxy(target string) (*tcpProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	return p, nil
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, up)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *tcpProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = true
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src) // ends when either side closes
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut drops every connection and refuses new ones until resume.
func (p *tcpProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) resume() { p.down.Store(false) }

func (p *tcpProxy) close() {
	p.ln.Close()
	p.cut()
}

// faultProxy forwards HTTP to Cloud Storage, answering 503 to a share of
// the uploads and of the compose calls.
type faultProxy struct {
	srv *httptest.Server
	// Rates in [0,1], as float64 bits.
	upload, compose atomic.Uint64
	failed          atomic.Int64
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rate := 0.0
		switch {
		case strings.HasSuffix(req.URL.Path, "/compose"):
			rate = p.rate(&p.compose)
		case strings.HasPrefix(req.URL.Path, "/upload/") && req.Method != http.MethodGet:
			rate = p.rate(&p.upload)
		}
		if rate > 0 && rand.Float64() < rate {
			p.failed.Add(1)
			_, _ = io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":503,"message":"injected backend error"}}`)
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *faultProxy) url() string { return p.srv.URL }

func (p *faultProxy) rate(v *atomic.Uint64) float64 {
	return math.Float64frombits(v.Load())
}

func (p *faultProxy) set(upload, compose float64) {
	p.upload.Store(math.Float64bits(upload))
	p.compose.Store(math.Float64bits(compose))
}
