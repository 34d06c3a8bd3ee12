// Command worker is the load scenario of the Pub/Sub worker (issue 4). It
// starts Google's real Pub/Sub emulator (the Java jar), the IAM Credentials
// emulator in-process (signBlob with 50 ms ± 10 ms latency and a quota), and
// one worker built by app.NewService from `linkissuer worker` flags, as the
// command builds it (links.Issuer, keyless signing through iam.Signer and
// the batching engine, Router, TopicPublisher, Pull). A publisher then sends
// GCS OBJECT_FINALIZE notifications, shaped as GCS sends them, at a fixed
// rate, and a consumer on the results topic measures, per object, the time
// from the notification's publish to the link's arrival.
//
// Two phases:
//
//	steady: -rate events/s (default 500) for -duration; reports the
//	        sustained rate and finalize-to-link latency p50/p99/max,
//	        beside the signBlob latency (the baseline the goal names);
//	burst:  -burst-n events published at once; reports links/s against
//	        the signing quota, to show which of the two bounds throughput.
//
// Notifications are synthetic (fake-gcs-server's inserts cost O(objects),
// too slow for thousands per second); they carry the same attributes and
// storage#object payload. All traffic stays on 127.0.0.1.
//
//	go run ./loadtest/worker
//	go run ./loadtest/worker -rate 200 -duration 10s -burst-n 0
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/app"
	linkconfig "github.com/linkissuer/linkissuer/config"
	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign/engine"
	"github.com/linkissuer/linkissuer/worker"
)

const project = "linkissuer-load"

type config struct {
	rate     float64
	duration time.Duration
	warmup   time.Duration
	burstN   int
	quota    float64
	latency  time.Duration
	jitter   time.Duration
	keyBits  int
	inFlight int
	streams  int
}

func main() {
	var c config
	flag.Float64Var(&c.rate, "rate", 500, "steady phase: notifications per second")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "steady phase length")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "steady phase: unmeasured lead-in at the same rate (the adaptive signer starts at 100/s and ramps up)")
	flag.IntVar(&c.burstN, "burst-n", 20000, "burst phase: notifications published at once (0 skips the phase)")
	flag.Float64Var(&c.quota, "quota", 1000, "signBlob quota of the IAM emulator, calls/s")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "signBlob mean latency")
	flag.DurationVar(&c.jitter, "jitter", 10*time.Millisecond, "signBlob latency spread (uniform ±)")
	flag.IntVar(&c.keyBits, "key-bits", 1024, "RSA key size of the IAM emulator (see loadtest/keyless)")
	flag.IntVar(&c.inFlight, "in-flight", 0, "engine MaxInFlight (0: default)")
	flag.IntVar(&c.streams, "streams", 2, "StreamingPull streams of the worker and of the transport baseline (linkissuer worker --streams)")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest/worker:", err)
		os.Exit(1)
	}
}

type rig struct {
	client  *pubsub.Client
	iam     *iamemu.Server
	eng     *engine.Engine
	sent    sync.Map // object name -> publish time
	mu      sync.Mutex
	latency []time.Duration // notification publish -> link received by a consumer
	issued  []time.Duration // notification publish -> link publish confirmed by the worker
	worked  []time.Duration // notification delivered to the worker -> link publish confirmed
	recv    sync.Map        // object name -> time the worker's handler got it
	links   atomic.Int64
	errors  atomic.Int64
}

// recordingPublisher is the worker's publisher, timing each confirmed link.
type recordingPublisher struct {
	inner worker.Publisher
	r     *rig
}

func (p *recordingPublisher) Publish(ctx context.Context, outs ...worker.Output) error {
	err := p.inner.Publish(ctx, outs...)
	if err == nil {
		for _, o := range outs {
			if v, ok := p.r.sent.Load(o.Attributes[schema.AttrObject]); ok && o.Topic == worker.TopicResults {
				d := time.Since(v.(time.Time))
				var w time.Duration
				if got, ok := p.r.recv.LoadAndDelete(o.Attributes[schema.AttrObject]); ok {
					w = time.Since(got.(time.Time))
				}
				p.r.mu.Lock()
				p.r.issued = append(p.r.issued, d)
				p.r.worked = append(p.r.worked, w)
				p.r.mu.Unlock()
			}
		}
	}
	return err
}

func run(c config) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emu, err := pubsubemu.Start(ctx, nil)
	if err != nil {
		return err
	}
	defer emu.Stop()
	os.Setenv("PUBSUB_EMULATOR_HOST", emu.Host)

	key, err := rsa.GenerateKey(rand.Reader, c.keyBits)
	if err != nil {
		return err
	}
	iam, err := iamemu.Start("127.0.0.1:0", &iamemu.Options{
		Email: "linkissuer@load.iam.gserviceaccount.com", Key: key,
		Latency: c.latency, Jitter: c.jitter, Quota: c.quota,
	})
	if err != nil {
		return err
	}
	defer iam.Close(context.Background())

	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer client.Close()
	for _, t := range []string{"notifications", "results", "errors", "transport"} {
		if err := pubsubemu.EnsureTopic(ctx, client, t); err != nil {
			return err
		}
	}
	for _, s := range []pubsubemu.Subscription{
		{ID: "worker", Topic: "notifications", AckDeadline: 60 * time.Second},
		{ID: "results-sub", Topic: "results"},
		{ID: "errors-sub", Topic: "errors"},
		{ID: "transport-sub", Topic: "transport"},
	} {
		if err := pubsubemu.EnsureSubscription(ctx, client, s); err != nil {
			return err
		}
	}

	r := &rig{client: client, iam: iam}
	stopWorker, err := r.startWorker(ctx, c)
	if err != nil {
		return err
	}
	defer stopWorker()
	cctx, stopConsume := context.WithCancel(ctx)
	defer stopConsume() // before the client closes (defers run last-in first-out)
	go r.consume(cctx)

	fmt.Printf("Pub/Sub emulator %s (real); IAM emulator quota %.0f/s, latency %s ± %s, RSA-%d; %d CPUs\n\n",
		emu.Host, c.quota, c.latency, c.jitter, c.keyBits, runtimeCPUs())
	if c.duration > 0 && c.rate > 0 {
		if err := r.transport(ctx, c); err != nil {
			return err
		}
		if err := r.steady(ctx, c); err != nil {
			return err
		}
	}
	if c.burstN > 0 {
		if err := r.burst(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// startWorker builds the worker through app, as `linkissuer worker` does,
// keyless against the IAM emulator, with the flags below; its handler and
// publisher are wrapped to time each notification. The link cache is off:
// every notification names another object, so it could not hit.
func (r *rig) startWorker(ctx context.Context, c config) (func(), error) {
	var cfg linkconfig.Worker
	if err := app.ParseArgs(&cfg,
		"--project", project,
		"--subscription", "worker",
		"--results-topic", "results",
		"--errors-topic", "errors",
		"--allow", "load-bucket",
		"--service-account", r.iam.Email(),
		"--iam-endpoint", r.iam.Endpoint(),
		"--sign-in-flight", strconv.Itoa(c.inFlight),
		"--jobs=false",
		"--link-cache-window", "0",
		"--max-outstanding", "2000",
		"--streams", strconv.Itoa(c.streams),
		"--handler-timeout", "1m",
		"--grace", "5s",
		"--log-level", "error",
	); err != nil {
		return nil, err
	}
	cfg.Instance = "load"
	svc, err := app.NewService(ctx, &cfg.Service, app.Options{
		// The handler notes when each notification reached the worker,
		// which splits finalize-to-link into the emulator's delivery and
		// the worker's own part; the publisher times each confirmed link.
		WrapHandler: func(h worker.Handler) worker.Handler {
			return func(ctx context.Context, m *worker.Message) ([]worker.Output, error) {
				r.recv.Store(m.Attributes["objectId"], time.Now())
				return h(ctx, m)
			}
		},
		WrapPublisher: func(p worker.Publisher) worker.Publisher { return &recordingPublisher{inner: p, r: r} },
	})
	if err != nil {
		return nil, err
	}
	r.eng = svc.Signer.Engine
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- worker.Pull(wctx, svc.Client.Subscriber(cfg.Subscription), svc.Router, app.PullOptions(&cfg), svc.Log)
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
		}
		svc.Publisher.Stop()
		svc.Close()
	}, nil
}

// consume records, per link, the time since its notification was published.
func (r *rig) consume(ctx context.Context) {
	err := r.client.Subscriber("results-sub").Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		var l schema.Link
		if json.Unmarshal(m.Data, &l) != nil {
			r.errors.Add(1)
			return
		}
		if v, ok := r.sent.LoadAndDelete(l.Object); ok {
			d := time.Since(v.(time.Time))
			r.mu.Lock()
			r.latency = append(r.latency, d)
			r.mu.Unlock()
			r.links.Add(1)
		}
	})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "consume:", err)
	}
}

func notification(name string, gen int64, now time.Time) *pubsub.Message {
	g := strconv.FormatInt(gen, 10)
	data, _ := json.Marshal(map[string]string{
		"kind": "storage#object", "id": "load-bucket/" + name + "/" + g, "name": name, "bucket": "load-bucket",
		"generation": g, "metageneration": "1", "contentType": "application/octet-stream", "size": "1024",
		"timeCreated": now.Format(time.RFC3339Nano), "updated": now.Format(time.RFC3339Nano), "storageClass": "STANDARD",
	})
	return &pubsub.Message{Data: data, Attributes: map[string]string{
		"bucketId": "load-bucket", "objectId": name, "objectGeneration": g, "eventType": "OBJECT_FINALIZE",
		"payloadFormat": "JSON_API_V1", "eventTime": now.Format(time.RFC3339Nano),
		"notificationConfig": "projects/_/buckets/load-bucket/notificationConfigs/1",
	}}
}

// publish sends n notifications at rate per second (0: at once); the
// publish time recorded is when the server confirmed each message.
func (r *rig) publish(ctx context.Context, prefix string, n int, rate float64) {
	pub := r.client.Publisher("notifications")
	// GCS publishes each notification as the object lands; the library's
	// default 10 ms batching delay would be the driver's, not the worker's.
	pub.PublishSettings.DelayThreshold = time.Millisecond
	defer pub.Stop()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		name := fmt.Sprintf("%s/%07d.bin", prefix, i)
		now := time.Now()
		r.sent.Store(name, now)
		res := pub.Publish(ctx, notification(name, 1700000000000000+int64(i), now))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := res.Get(ctx); err != nil {
				r.errors.Add(1)
			}
		}()
	}
	wg.Wait()
}

func (r *rig) reset() {
	r.mu.Lock()
	r.latency = r.latency[:0]
	r.issued = r.issued[:0]
	r.worked = r.worked[:0]
	r.mu.Unlock()
	r.links.Store(0)
}

// wait waits until n links arrived or the timeout passed.
func (r *rig) wait(n int64, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for r.links.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return time.Now()
}

func (r *rig) steady(ctx context.Context, c config) error {
	if c.warmup > 0 {
		w := int(c.rate * c.warmup.Seconds())
		r.publish(ctx, "warmup", w, c.rate)
		r.wait(int64(w), time.Minute)
	}
	r.reset()
	n := int(c.rate * c.duration.Seconds())
	before := r.eng.Stats()
	start := time.Now()
	r.publish(ctx, "steady", n, c.rate)
	end := r.wait(int64(n), c.duration+2*time.Minute)
	after := r.eng.Stats()
	got := r.links.Load()
	p := percentiles(&r.mu, &r.latency)
	pi := percentiles(&r.mu, &r.issued)
	pw := percentiles(&r.mu, &r.worked)
	signP99 := after.CallLatency.Quantile(0.99)
	fmt.Printf("## steady: %d notifications at %.0f/s\n\n", n, c.rate)
	fmt.Printf("| metric | value |\n| --- | ---: |\n")
	fmt.Printf("| links received | %d of %d |\n", got, n)
	fmt.Printf("| sustained links/s (first publish to last link) | %.1f |\n", float64(got)/end.Sub(start).Seconds())
	fmt.Printf("| finalize-to-link published (worker confirmed) p50 / p99 / max | %s / %s / %s |\n", ms(pi[0]), ms(pi[1]), ms(pi[2]))
	fmt.Printf("| finalize-to-link received by a consumer (two Pub/Sub hops) p50 / p99 / max | %s / %s / %s |\n", ms(p[0]), ms(p[1]), ms(p[2]))
	fmt.Printf("| of which the worker's part (delivered to link published) p50 / p99 / max | %s / %s / %s |\n", ms(pw[0]), ms(pw[1]), ms(pw[2]))
	fmt.Printf("| signBlob call p50 / p99 (baseline) | %s / %s |\n", ms(after.CallLatency.Quantile(0.5)), ms(signP99))
	fmt.Printf("| goal: finalize-to-link published p99 <= signBlob p99 + 50 ms | %s (%s vs %s) |\n", verdict(pi[1] <= signP99+50*time.Millisecond), ms(pi[1]), ms(signP99+50*time.Millisecond))
	fmt.Printf("| the worker's part p99 <= signBlob p99 + 50 ms | %s (%s vs %s) |\n", verdict(pw[1] <= signP99+50*time.Millisecond), ms(pw[1]), ms(signP99+50*time.Millisecond))
	fmt.Printf("| signBlob calls / 429s | %d / %d |\n\n", after.Calls-before.Calls, after.Throttled-before.Throttled)
	return nil
}

// transport measures one Pub/Sub hop on the emulator at the steady rate:
// the floor under any finalize-to-link latency, which includes one hop
// (notification to worker) plus the publish of the link.
func (r *rig) transport(ctx context.Context, c config) error {
	var mu sync.Mutex
	var lat []time.Duration
	n := int(c.rate * 5)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub := r.client.Subscriber("transport-sub")
	sub.ReceiveSettings.NumGoroutines = c.streams
	go sub.Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		t, err := time.Parse(time.RFC3339Nano, string(m.Data))
		if err != nil {
			return
		}
		mu.Lock()
		lat = append(lat, time.Since(t))
		if len(lat) == n {
			cancel()
		}
		mu.Unlock()
	})
	pub := r.client.Publisher("transport")
	pub.PublishSettings.DelayThreshold = time.Millisecond
	start := time.Now()
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(float64(i) / c.rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		pub.Publish(ctx, &pubsub.Message{Data: []byte(time.Now().Format(time.RFC3339Nano))})
	}
	pub.Stop()
	select {
	case <-rctx.Done():
	case <-time.After(30 * time.Second):
	}
	p := percentiles(&mu, &lat)
	fmt.Printf("## transport baseline: one Pub/Sub hop on the emulator, %d messages at %.0f/s\n\n", n, c.rate)
	fmt.Printf("| metric | value |\n| --- | ---: |\n| publish-to-receive p50 / p99 / max | %s / %s / %s |\n\n", ms(p[0]), ms(p[1]), ms(p[2]))
	return nil
}

func (r *rig) burst(ctx context.Context, c config) error {
	r.reset()
	before := r.eng.Stats()
	cpuBefore := cpuTime()
	start := time.Now()
	r.publish(ctx, "burst", c.burstN, 0)
	published := time.Since(start)
	end := r.wait(int64(c.burstN), 5*time.Minute)
	after := r.eng.Stats()
	got := r.links.Load()
	rate := float64(got) / end.Sub(start).Seconds()
	fmt.Printf("## burst: %d notifications published at once (in %s)\n\n", c.burstN, published.Round(time.Millisecond))
	fmt.Printf("| metric | value |\n| --- | ---: |\n")
	fmt.Printf("| links received | %d of %d |\n", got, c.burstN)
	fmt.Printf("| links/s | %.1f |\n", rate)
	fmt.Printf("| signing quota (bound) | %.0f/s |\n", c.quota)
	fmt.Printf("| links/s / quota | %.1f%% |\n", 100*rate/c.quota)
	fmt.Printf("| CPU of this process (worker + IAM emulator + load driver) | %.2f cores of %d |\n", (cpuTime()-cpuBefore).Seconds()/end.Sub(start).Seconds(), runtime.NumCPU())
	fmt.Printf("| signBlob calls / 429s | %d / %d |\n\n", after.Calls-before.Calls, after.Throttled-before.Throttled)
	return nil
}

func percentiles(mu *sync.Mutex, samples *[]time.Duration) [3]time.Duration {
	mu.Lock()
	defer mu.Unlock()
	l := slices.Clone(*samples)
	slices.Sort(l)
	if len(l) == 0 {
		return [3]time.Duration{}
	}
	at := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))] }
	return [3]time.Duration{at(0.5), at(0.99), l[len(l)-1]}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func runtimeCPUs() int { return runtime.NumCPU() }

// cpuTime is the user+system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
