// Command linkcache measures the link cache on a skewed workload: requests
// for objects drawn from a Zipf distribution (s=1.1 over 10,000 objects)
// sent as POST /v1/links to serve's push server (built by app.NewService
// from `linkissuer serve --sync-links` flags) over real HTTP, signed
// keyless through the engine and the IAM Credentials emulator (quota
// 1000/s, 50 ms ± 10 ms). It runs the same stream with the cache on and off,
// side by side, and prints signBlob calls per issued link and issued links
// per second against the quota.
//
//	go run ./loadtest/linkcache                 # 100,000 requests cached, 20,000 uncached
//	go run ./loadtest/linkcache -n 10000 -n-uncached 2000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/linkissuer/linkissuer/app"
	linkconfig "github.com/linkissuer/linkissuer/config"
	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/linkcache"
	"github.com/linkissuer/linkissuer/worker"
)

type config struct {
	n, nUncached, objects, clients, size int
	s, quota                             float64
	window, latency                      time.Duration
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 100_000, "requests with the cache on")
	flag.IntVar(&c.nUncached, "n-uncached", 20_000, "requests with the cache off (the quota bounds them: 1000/s)")
	flag.IntVar(&c.objects, "objects", 10_000, "distinct objects")
	flag.Float64Var(&c.s, "s", 1.1, "Zipf exponent")
	flag.IntVar(&c.clients, "clients", 64, "concurrent HTTP clients")
	flag.IntVar(&c.size, "size", linkcache.DefaultSize, "cache size")
	flag.DurationVar(&c.window, "window", linkcache.DefaultWindow, "cache window")
	flag.Float64Var(&c.quota, "quota", 1000, "emulator signBlob quota, calls per second")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "emulator mean latency")
	flag.Parse()
	fmt.Printf("Zipf s=%g over %d objects, %d concurrent clients, POST /v1/links; keyless through the engine and the IAM emulator (quota %g/s, latency %s ± 10ms); cache window %s, size %d; %d CPUs\n\n",
		c.s, c.objects, c.clients, c.quota, c.latency, c.window, c.size, runtime.NumCPU())
	fmt.Println("| link cache | requests | issued | distinct objects asked | signBlob calls | calls per issued link | wall time | issued links/s | links/s over the quota | p50 / p99 latency |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, on := range []bool{true, false} {
		n := c.n
		if !on {
			n = c.nUncached
		}
		r, err := run(c, on, n)
		if err != nil {
			fmt.Fprintln(os.Stderr, "linkcache:", err)
			os.Exit(1)
		}
		state := "off"
		if on {
			state = "on"
		}
		rate := float64(r.issued) / r.wall.Seconds()
		fmt.Printf("| %s | %d | %d | %d | %d | %.3f | %s | %.0f | %.2f | %s / %s |\n",
			state, n, r.issued, r.distinct, r.calls, float64(r.calls)/float64(max(1, r.issued)),
			r.wall.Round(10*time.Millisecond), rate, rate/c.quota, r.p50, r.p99)
	}
}

type result struct {
	issued, distinct int
	calls            int64
	wall, p50, p99   time.Duration
}

func run(c config, cached bool, n int) (result, error) {
	ctx := context.Background()
	srv, err := emulator.Start("127.0.0.1:0", &emulator.Options{Quota: c.quota, Burst: max(1, int(c.quota/10)), Latency: c.latency, Jitter: 10 * time.Millisecond, Seed: 1})
	if err != nil {
		return result{}, err
	}
	defer srv.Close(ctx)
	// serve needs a Pub/Sub client; POST /v1/links publishes nothing, so
	// an in-process fake serves it.
	ps := pstest.NewServer()
	defer ps.Close()
	os.Setenv("PUBSUB_EMULATOR_HOST", ps.Addr)
	window := time.Duration(0)
	if cached {
		window = c.window
	}
	// Built by app.NewService from `linkissuer serve` flags, as the
	// command builds it: keyless through the engine, the link cache
	// (--link-cache-window 0 turns it off), the sync API's issuer.
	var cfg linkconfig.Serve
	if err := app.ParseArgs(&cfg,
		"--project", "linkissuer-load",
		"--results-topic", "results",
		"--errors-topic", "errors",
		"--allow", "zipf-bucket",
		"--service-account", srv.Email(),
		"--iam-endpoint", srv.Endpoint(),
		"--jobs=false",
		"--link-cache-window", window.String(),
		"--link-cache-size", strconv.Itoa(c.size),
		"--insecure-skip-auth",
		"--sync-links",
		"--log-level", "error",
	); err != nil {
		return result{}, err
	}
	svc, err := app.NewService(ctx, &cfg.Service, app.Options{})
	if err != nil {
		return result{}, err
	}
	defer svc.Close()
	defer svc.Publisher.Stop()
	push, err := worker.NewPushServer(svc.Router, &worker.PushOptions{
		InsecureSkipAuth: true, MaxInFlight: 4 * c.clients, Links: svc.SyncLinks(),
	})
	if err != nil {
		return result{}, err
	}
	hs := httptest.NewServer(push)
	defer hs.Close()

	// The request stream: the same seed for both runs.
	rng := rand.New(rand.NewPCG(42, 1))
	zipf := rand.NewZipf(rng, c.s, 1, uint64(c.objects-1))
	objects := make([]int, n)
	seen := map[int]bool{}
	for i := range objects {
		objects[i] = int(zipf.Uint64())
		seen[objects[i]] = true
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.clients}}
	var (
		next, issued atomic.Int64
		mu           sync.Mutex
		lat          []time.Duration
		firstErr     error
		wg           sync.WaitGroup
	)
	start := time.Now()
	for range c.clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body, _ := json.Marshal(worker.LinkRequest{Bucket: "zipf-bucket", Object: fmt.Sprintf("objects/%05d.bin", objects[i])})
				t := time.Now()
				resp, err := client.Post(hs.URL+worker.PathLinks, "application/json", bytes.NewReader(body))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("POST /v1/links: %s", resp.Status)
					}
				}
				d := time.Since(t)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					lat = append(lat, d)
				}
				mu.Unlock()
				if err == nil {
					issued.Add(1)
				}
			}
		})
	}
	wg.Wait()
	r := result{issued: int(issued.Load()), distinct: len(seen), calls: srv.Stats().Signed, wall: time.Since(start)}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "first error: %v\n", firstErr)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50 = lat[len(lat)/2].Round(100 * time.Microsecond)
		r.p99 = lat[len(lat)*99/100].Round(100 * time.Microsecond)
	}
	return r, nil
}
