// Command keyless is the load scenario of keyless signing at quota (issue
// 3): it starts the IAM Credentials emulator in-process on 127.0.0.1 with a
// quota (default 1000 calls/s) and a latency (default 50 ms ± 10 ms), and
// signs N URLs (default 30,000) through sign.URLSigner -> iam.Signer
// over real HTTP, four ways:
//
//	a. sequential: one signBlob at a time, as the Go library's SignedURL
//	   does (run on a sample and extrapolated, as stated in the report);
//	b. unbounded: one goroutine per URL, each retrying retryable errors up
//	   to 5 times with exponential backoff, no rate adaptation;
//	c. engine, ceiling: sign/engine with Options.Ceiling = the quota;
//	d. engine, adaptive: sign/engine with no ceiling (quota unknown).
//
// Each scenario gets a fresh emulator (a full quota bucket), and every
// 500th URL's signature is verified against the emulator's key. It prints
// a Markdown table for BENCHMARKS.md. All traffic stays on the loopback
// interface; every scenario is bounded by -timeout.
//
// The emulator signs with an RSA-1024 key by default. It stands in for
// Google's servers, and on a 2-core machine an RSA-2048 signature (1.3 ms
// of CPU) at 1000/s would spend most of the machine on the server's side of
// the wire, which in production is not ours to pay; the client's work
// (HTTP, JSON, pacing) is the same either way. -key-bits 2048 shows the
// CPU-bound case.
//
//	go run ./loadtest/keyless                        # the full run
//	go run ./loadtest/keyless -n 3000 -scenarios c,d # a quick look
//	go run ./loadtest/keyless -scenarios d -burst 50 -progress
//	go run ./loadtest/keyless -replicas 1,3,10 -shapes bucket,window   # N linkissuer sign processes, one quota (replicas.go)
//	go run ./loadtest/keyless -replicas 1,3,10 -fleet off,on           # the same, without and with --quota-fleet
package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"iter"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/api/option"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
	"github.com/linkissuer/linkissuer/sign/iam"
)

type config struct {
	n, sample, inFlight, keyBits, burst int
	quota                               float64
	latency, jitter, timeout            time.Duration
	scenarios                           string
	progress, alignWindow               bool

	replicas, shapes, trace, compareRef, fleet string
	replicaURLs, windowURLs                    int
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 30000, "URLs to sign per scenario")
	flag.IntVar(&c.sample, "sequential-sample", 1000, "URLs the sequential baseline signs (then extrapolated to -n)")
	flag.IntVar(&c.inFlight, "in-flight", engine.DefaultMaxInFlight, "engine MaxInFlight")
	flag.IntVar(&c.keyBits, "key-bits", 1024, "RSA key size of the emulator (Google uses 2048; see the package doc)")
	flag.IntVar(&c.burst, "burst", 0, "emulator quota bucket depth (0: one second of quota)")
	flag.Float64Var(&c.quota, "quota", 1000, "emulator quota, calls per second")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "emulator mean latency")
	flag.DurationVar(&c.jitter, "jitter", 10*time.Millisecond, "emulator latency spread (uniform ±)")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Minute, "time limit of each scenario")
	flag.StringVar(&c.scenarios, "scenarios", "a,b,c,d", "scenarios to run")
	flag.BoolVar(&c.progress, "progress", false, "print the engine's state every second (to stderr)")
	flag.StringVar(&c.replicas, "replicas", "", "instead of the scenarios: run this many `linkissuer sign` processes at once per row against one emulator, e.g. 1,3,10 (see replicas.go)")
	flag.StringVar(&c.shapes, "shapes", "bucket,window", "with -replicas: quota shapes, bucket (token bucket 0.1 s deep) and window (fixed per-minute window)")
	flag.IntVar(&c.replicaURLs, "replica-urls", 30000, "with -replicas: URLs signed in all against the token bucket")
	flag.IntVar(&c.windowURLs, "window-urls", 180000, "with -replicas: URLs signed in all against the fixed window (several windows)")
	flag.StringVar(&c.compareRef, "compare-ref", "", "with -replicas: also run a linkissuer built from this git ref (say main), row by row")
	flag.StringVar(&c.trace, "trace", "", "with -replicas: write URLs issued per second per process to this CSV file")
	flag.BoolVar(&c.alignWindow, "align-window", true, "with -replicas: start each window row on a minute boundary, the emulator's window reset")
	flag.StringVar(&c.fleet, "fleet", "off", "with -replicas: off, on, known, or several (row by row): on gives every process --quota-fleet on one fake-gcs-server run in-process, known also --sign-quota (the emulator's quota)")
	flag.Parse()

	key, err := rsa.GenerateKey(rand.Reader, c.keyBits)
	if err != nil {
		fatal(err)
	}
	if c.replicas != "" {
		replicasMain(c, key)
		return
	}
	fmt.Printf("emulator: quota %g/s (burst %s), latency %s ± %s, RSA-%d; %d URLs per scenario; engine MaxInFlight %d; %d CPUs\n\n",
		c.quota, burstText(c), c.latency, c.jitter, c.keyBits, c.n, c.inFlight, runtime.NumCPU())
	var results []result
	for _, s := range strings.Split(c.scenarios, ",") {
		r, err := run(c, key, strings.TrimSpace(s))
		if err != nil {
			fatal(err)
		}
		fmt.Fprintf(os.Stderr, "%s: done in %s\n", r.name, r.wall.Round(time.Millisecond))
		results = append(results, r)
	}
	printTable(c, results)
}

func burstText(c config) string {
	if c.burst > 0 {
		return fmt.Sprint(c.burst)
	}
	return fmt.Sprintf("%d, one second", max(1, int(c.quota)))
}

type result struct {
	name            string
	urls, issued    int
	failed          int
	wall            time.Duration
	extrapolated    bool
	latencies       []time.Duration
	calls, throttle int64
	verified        int
	finalRate       float64
	cpu             time.Duration
	firstErr        error
}

func run(c config, key *rsa.PrivateKey, scenario string) (result, error) {
	srv, err := emulator.Start("127.0.0.1:0", &emulator.Options{
		Key: key, Latency: c.latency, Jitter: c.jitter, Quota: c.quota, Burst: c.burst, Seed: 1,
	})
	if err != nil {
		return result{}, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()

	var clientOpts []option.ClientOption
	if scenario == "b" {
		// One connection per goroutine would exhaust the loopback's
		// ephemeral ports; 1000 connections are still far more than the
		// quota needs.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = 1000, 1000
		clientOpts = append(clientOpts, option.WithHTTPClient(&http.Client{Transport: tr}))
	}
	keyless, err := iam.NewSigner(ctx, iam.Options{Email: srv.Email(), Endpoint: srv.Endpoint(), ClientOptions: clientOpts})
	if err != nil {
		return result{}, err
	}
	r := result{urls: c.n}
	timed := &timingSigner{}
	var eng *engine.Engine
	switch scenario {
	case "a":
		r.name, r.urls, r.extrapolated = "a. sequential (one at a time)", min(c.sample, c.n), true
		timed.inner = keyless
	case "b":
		r.name = "b. unbounded goroutines, no adaptation"
		timed.inner = &naiveRetry{inner: keyless, attempts: 5, base: 100 * time.Millisecond}
	case "c", "d":
		o := &engine.Options{MaxInFlight: c.inFlight}
		r.name = "d. engine, quota unknown (no ceiling)"
		if scenario == "c" {
			o.Ceiling = c.quota
			r.name = fmt.Sprintf("c. engine, ceiling %g/s", c.quota)
		}
		if eng, err = engine.New(keyless, o); err != nil {
			return result{}, err
		}
		timed.inner = eng
	default:
		return result{}, fmt.Errorf("unknown scenario %q (want a, b, c or d)", scenario)
	}
	u, err := sign.New(timed, nil)
	if err != nil {
		return result{}, err
	}
	pub := &key.PublicKey
	signTime := time.Now().UTC().Truncate(time.Second)
	reqs := requests(r.urls, signTime)
	var mu sync.Mutex
	record := func(i int, link *sign.SignedURL, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			r.failed++
			if r.firstErr == nil {
				r.firstErr = err
			}
			return
		}
		r.issued++
		if i%500 == 0 {
			if verify(u, pub, request(i, signTime), link) {
				r.verified++
			} else {
				r.failed++
				r.issued--
			}
		}
	}

	cpu0 := cpuTime()
	start := time.Now()
	switch scenario {
	case "a":
		i := 0
		for req := range reqs {
			link, err := u.Sign(ctx, req)
			record(i, link, err)
			i++
		}
	case "b":
		var wg sync.WaitGroup
		i := 0
		for req := range reqs {
			idx := i
			i++
			wg.Go(func() {
				link, err := u.Sign(ctx, req)
				record(idx, link, err)
			})
		}
		wg.Wait()
	case "c", "d":
		stop := make(chan struct{})
		var progress sync.WaitGroup
		if c.progress {
			progress.Go(func() { report(eng, srv, stop) })
		}
		err := eng.SignAll(ctx, u, reqs, record)
		close(stop)
		progress.Wait()
		if err != nil {
			return result{}, err
		}
	}
	r.wall = time.Since(start)
	r.cpu = cpuTime() - cpu0
	r.latencies = timed.durations()
	st := srv.Stats()
	r.calls, r.throttle = st.Requests, st.Throttled
	if eng != nil {
		r.finalRate = eng.Stats().Rate
	}
	return r, nil
}

// report prints the engine's and the emulator's state every second until
// stop is closed.
func report(eng *engine.Engine, srv *emulator.Server, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last uint64
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		st := eng.Stats()
		fmt.Fprintf(os.Stderr, "  %5d ok/s  rate %6.0f  in flight %3d  call p50 %6s p99 %6s  429s %d\n",
			st.Successes-last, st.Rate, st.InFlight,
			st.CallLatency.Quantile(0.5).Round(time.Millisecond), st.CallLatency.Quantile(0.99).Round(time.Millisecond), srv.Stats().Throttled)
		last = st.Successes
	}
}

func request(i int, t time.Time) sign.Request {
	return sign.Request{Method: "GET", Bucket: "loadtest-bucket", Object: fmt.Sprintf("exports/part-%06d.csv", i), Expires: time.Hour, Time: t}
}

func requests(n int, t time.Time) iter.Seq[sign.Request] {
	return func(yield func(sign.Request) bool) {
		for i := range n {
			if !yield(request(i, t)) {
				return
			}
		}
	}
}

func verify(u *sign.URLSigner, pub *rsa.PublicKey, r sign.Request, link *sign.SignedURL) bool {
	prep, err := u.Prepare(r)
	if err != nil {
		return false
	}
	parsed, err := url.Parse(link.URL)
	if err != nil {
		return false
	}
	sig, err := hex.DecodeString(parsed.Query().Get("X-Goog-Signature"))
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(prep.StringToSign))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
}

// timingSigner records how long each signature took its caller.
type timingSigner struct {
	inner sign.Signer
	mu    sync.Mutex
	d     []time.Duration
}

func (t *timingSigner) Credential() sign.Credential { return t.inner.Credential() }

func (t *timingSigner) Sign(ctx context.Context, s sign.Scope, sts []byte) ([]byte, error) {
	start := time.Now()
	sig, err := t.inner.Sign(ctx, s, sts)
	d := time.Since(start)
	if err == nil {
		t.mu.Lock()
		t.d = append(t.d, d)
		t.mu.Unlock()
	}
	return sig, err
}

func (t *timingSigner) durations() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.d)
	slices.Sort(out)
	return out
}

// naiveRetry is the retry loop one writes by hand: fixed attempts,
// exponential backoff with full jitter, no pacing.
type naiveRetry struct {
	inner    sign.Signer
	attempts int
	base     time.Duration
}

func (n *naiveRetry) Credential() sign.Credential { return n.inner.Credential() }

func (n *naiveRetry) Sign(ctx context.Context, s sign.Scope, sts []byte) ([]byte, error) {
	var err error
	for a := range n.attempts {
		var sig []byte
		if sig, err = n.inner.Sign(ctx, s, sts); err == nil || !sign.IsRetryable(err) {
			return sig, err
		}
		wait := time.Duration(mrand.Float64() * float64(n.base<<a))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, err
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func printTable(c config, rs []result) {
	fmt.Println("| scenario | URLs | wall time | achieved rate | % of quota | p50 / p99 per signature | signBlob calls | 429s (% of calls) | failed URLs | CPU (user+sys) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		rate := float64(r.issued) / r.wall.Seconds()
		wall := r.wall.Round(10 * time.Millisecond).String()
		urls := fmt.Sprint(r.urls)
		if r.extrapolated {
			urls = fmt.Sprintf("%d (sample)", r.urls)
			wall += fmt.Sprintf("; %d URLs extrapolated: %s", c.n, time.Duration(float64(c.n)/rate*float64(time.Second)).Round(time.Second))
		}
		pct := 0.0
		if r.calls > 0 {
			pct = 100 * float64(r.throttle) / float64(r.calls)
		}
		fmt.Printf("| %s | %s | %s | %.0f/s | %.1f%% | %s / %s | %d | %d (%.2f%%) | %d | %s |\n",
			r.name, urls, wall, rate, 100*rate/c.quota,
			percentile(r.latencies, 0.50).Round(100*time.Microsecond), percentile(r.latencies, 0.99).Round(100*time.Microsecond),
			r.calls, r.throttle, pct, r.failed, r.cpu.Round(10*time.Millisecond))
	}
	fmt.Println()
	for _, r := range rs {
		fmt.Printf("- %s: %d sample signatures verified against the emulator's key", r.name, r.verified)
		if r.finalRate > 0 {
			fmt.Printf("; engine rate at the end %.0f/s", r.finalRate)
		}
		if r.firstErr != nil {
			fmt.Printf("; first error: %v", r.firstErr)
		}
		fmt.Println()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "keyless load test:", err)
	os.Exit(1)
}
