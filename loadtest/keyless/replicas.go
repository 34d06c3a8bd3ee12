package main

import (
	"bufio"
	"context"
	"crypto/rsa"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
)

// The replicas mode runs whole `linkissuer sign --service-account ...
// --from-file` processes, N at once, against one emulator: the quota they
// share without knowing of each other. Each (shape, N) gets a fresh
// emulator; every process signs its share of -replica-urls. It prints one
// Markdown table, all rows from one run, and with -trace a CSV of URLs
// issued per second per process (loadtest/plot draws it).
//
// With -fleet on (or off,on: each row without, then with) the processes
// also get --quota-fleet gs://loadtest-fleet/ROW on one fake-gcs-server
// run in this process (STORAGE_EMULATOR_HOST points them at it, so their
// URLs name it too): they see each other and keep to fair shares.
// Window rows start on a minute boundary (-align-window), the emulator's
// window reset, so that URLs / wall time / quota is the share of the
// quota, as on the bucket. With -fleet known the processes get
// --quota-fleet and --sign-quota (the emulator's quota per minute) too:
// they split the known quota from their first call. With -compare-ref the
// other build runs the fleet rows too: the ref must have --quota-fleet
// (31f40af or later), and --sign-quota for known rows.
//
//	go run ./loadtest/keyless -replicas 1,3,10 -shapes bucket,window -fleet off,on,known

type replicaRun struct {
	build    string // which linkissuer
	fleet    string // off, on (--quota-fleet) or known (and --sign-quota)
	shape    string
	n        int
	urls     int
	issued   int
	wall     time.Duration
	calls    int64
	refused  int64
	perProc  []int           // URLs each process issued
	perSec   [][]int         // [process][second] URLs issued
	finished []time.Duration // when each process ended
	load     [2]string       // load average (1 min) at the start and the end
	err      error
}

// fleetBucket is the bucket on the in-process fake-gcs-server that holds
// the fleet rows' prefixes.
const fleetBucket = "loadtest-fleet"

func replicasMain(c config, key *rsa.PrivateKey) {
	bin, cleanup, err := buildLinkissuer("")
	if err != nil {
		fatal(err)
	}
	defer cleanup()
	builds := []build{{"this tree", bin}}
	if c.compareRef != "" {
		old, cleanup, err := buildLinkissuer(c.compareRef)
		if err != nil {
			fatal(err)
		}
		defer cleanup()
		builds = []build{{c.compareRef, old}, {"this tree", bin}}
	}
	modes, err := fleetModes(c.fleet)
	if err != nil {
		fatal(err)
	}
	var gcs *fakestorage.Server
	if slices.ContainsFunc(modes, func(m string) bool { return m != "off" }) {
		gcs, err = fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
		if err != nil {
			fatal(err)
		}
		defer gcs.Stop()
		gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: fleetBucket})
	}
	fmt.Printf("emulator: quota %g/s, latency %s ± %s, RSA-%d; linkissuer sign processes with default engine settings (no ceiling); fleet view %s; %d CPUs\n\n",
		c.quota, c.latency, c.jitter, c.keyBits, c.fleet, runtime.NumCPU())
	runs, err := runReplicas(c, key, builds, modes, gcs)
	if err != nil {
		fatal(err)
	}
	printReplicas(c, runs)
	if c.trace != "" {
		if err := writeTrace(c.trace, runs); err != nil {
			fatal(err)
		}
	}
}

type build struct{ name, bin string }

// fleetModes parses -fleet: off, on or known, several in the order given.
func fleetModes(s string) ([]string, error) {
	var modes []string
	for _, m := range strings.Split(s, ",") {
		switch m = strings.TrimSpace(m); m {
		case "off", "on", "known":
			modes = append(modes, m)
		default:
			return nil, fmt.Errorf("-fleet: %q is not off, on or known", m)
		}
	}
	return modes, nil
}

// fleetTarget is a fleet row's --quota-fleet and the emulator behind it,
// and its --sign-quota (calls per minute, 0: none).
type fleetTarget struct {
	url, host string
	quota     float64
}

func runReplicas(c config, key *rsa.PrivateKey, builds []build, modes []string, gcs *fakestorage.Server) ([]replicaRun, error) {
	var runs []replicaRun
	for _, shape := range strings.Split(c.shapes, ",") {
		for _, s := range strings.Split(c.replicas, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return nil, fmt.Errorf("-replicas: %q is not a count", s)
			}
			for _, b := range builds {
				for _, mode := range modes {
					var ft *fleetTarget
					if mode != "off" {
						ft = &fleetTarget{url: fmt.Sprintf("gs://%s/%s-%d-%d", fleetBucket, strings.TrimSpace(shape), n, len(runs)), host: gcs.URL()}
					}
					if mode == "known" {
						ft.quota = 60 * c.quota
					}
					r, err := runReplicaSet(c, key, b.bin, strings.TrimSpace(shape), n, ft)
					if err != nil {
						return nil, err
					}
					r.build, r.fleet = b.name, mode
					left := ""
					if ft != nil {
						objs, _, err := gcs.ListObjectsWithOptions(fleetBucket, fakestorage.ListOptions{Prefix: strings.TrimPrefix(ft.url, "gs://"+fleetBucket+"/") + "/"})
						left = fmt.Sprintf(", %d member objects left, %v", len(objs), err)
					}
					fmt.Fprintf(os.Stderr, "%s, fleet %s, %s x%d: %d/%d URLs in %s, %d of %d calls refused, load %s -> %s%s\n",
						r.build, mode, r.shape, r.n, r.issued, r.urls, r.wall.Round(time.Millisecond), r.refused, r.calls, r.load[0], r.load[1], left)
					runs = append(runs, r)
				}
			}
		}
	}
	return runs, nil
}

// loadAverage is the 1-minute load average, or "?".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func runReplicaSet(c config, key *rsa.PrivateKey, bin, shape string, n int, ft *fleetTarget) (replicaRun, error) {
	o := &emulator.Options{Key: key, Latency: c.latency, Jitter: c.jitter, Quota: c.quota, Seed: 1}
	urls := c.replicaURLs
	switch shape {
	case "bucket":
		o.Burst = max(1, int(c.quota/10)) // strict: 0.1 s deep
	case "window":
		o.Window = time.Minute
		urls = c.windowURLs
	default:
		return replicaRun{}, fmt.Errorf("-shapes: unknown shape %q (want bucket or window)", shape)
	}
	srv, err := emulator.Start("127.0.0.1:0", o)
	if err != nil {
		return replicaRun{}, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
	}()
	dir, err := os.MkdirTemp("", "linkissuer-replicas-")
	if err != nil {
		return replicaRun{}, err
	}
	defer os.RemoveAll(dir)
	r := replicaRun{shape: shape, n: n, urls: urls, perProc: make([]int, n), perSec: make([][]int, n), finished: make([]time.Duration, n)}
	var files []string
	for p := range n {
		f := filepath.Join(dir, fmt.Sprintf("urls-%d.txt", p))
		var b strings.Builder
		for i := p; i < urls; i += n {
			fmt.Fprintf(&b, "gs://loadtest-bucket/replicas/%s-%d/obj-%07d\n", shape, n, i)
		}
		if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
			return replicaRun{}, err
		}
		files = append(files, f)
	}
	if shape == "window" && c.alignWindow {
		// Start with the emulator's window (it resets on the minute).
		next := time.Now().Truncate(time.Minute).Add(time.Minute)
		fmt.Fprintf(os.Stderr, "window x%d: waiting %s for the minute\n", n, time.Until(next).Round(time.Second))
		time.Sleep(time.Until(next))
	}
	r.load[0] = loadAverage()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		start = time.Now()
	)
	for p := range n {
		args := []string{"sign", "--service-account", srv.Email(), "--iam-endpoint", srv.Endpoint(),
			"--duration", "1h", "--from-file", files[p]}
		env := append(os.Environ(), "GOOGLE_CLOUD_PROJECT=loadtest")
		if ft != nil {
			args = append(args, "--quota-fleet", ft.url)
			if ft.quota > 0 {
				args = append(args, "--sign-quota", strconv.FormatFloat(ft.quota, 'f', -1, 64))
			}
			env = append(env, "STORAGE_EMULATOR_HOST="+ft.host)
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.StdoutPipe()
		if err != nil {
			return replicaRun{}, err
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			return replicaRun{}, err
		}
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if line := sc.Text(); !strings.HasPrefix(line, "https://") && !strings.HasPrefix(line, "http://") {
					continue // URLs name the storage emulator on fleet rows
				}
				sec := int(time.Since(start) / time.Second)
				mu.Lock()
				r.perProc[p]++
				for len(r.perSec[p]) <= sec {
					r.perSec[p] = append(r.perSec[p], 0)
				}
				r.perSec[p][sec]++
				mu.Unlock()
			}
			err := cmd.Wait()
			mu.Lock()
			defer mu.Unlock()
			r.finished[p] = time.Since(start)
			if err != nil && r.err == nil && ctx.Err() == nil { // a run cut by -timeout reports what it issued
				r.err = fmt.Errorf("process %d: %w: %s", p, err, lastLine(stderr.String()))
			}
		})
	}
	wg.Wait()
	r.wall = time.Since(start)
	r.load[1] = loadAverage()
	for _, k := range r.perProc {
		r.issued += k
	}
	st := srv.Stats()
	r.calls, r.refused = st.Requests, st.Throttled
	return r, r.err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// buildLinkissuer builds the command into a temporary directory: from
// the working tree, or from a git ref's tree if ref is given.
func buildLinkissuer(ref string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "linkissuer-bin-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "linkissuer")
	src := "."
	if ref != "" {
		src = filepath.Join(dir, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		archive := exec.Command("sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", ref, src)
		archive.Stderr = os.Stderr
		if err := archive.Run(); err != nil {
			os.RemoveAll(dir)
			return "", nil, fmt.Errorf("exporting %s: %w", ref, err)
		}
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building linkissuer: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

func printReplicas(c config, runs []replicaRun) {
	fmt.Println("| linkissuer | fleet view | quota shape | processes | URLs | wall time | issued rate | share of the quota | signBlob calls | 429s (% of calls) | slowest / fastest process | load average start / end |")
	fmt.Println("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range runs {
		rate := float64(r.issued) / r.wall.Seconds()
		lo, hi := r.finished[0], r.finished[0]
		for _, f := range r.finished {
			lo, hi = min(lo, f), max(hi, f)
		}
		fleet := map[string]string{"off": "off", "on": "on", "known": "on, --sign-quota"}[r.fleet]
		fmt.Printf("| %s | %s | %s | %d | %d | %s | %.0f/s | %.3f | %d | %d (%.2f%%) | %s / %s | %s / %s |\n",
			r.build, fleet, shapeText(c, r.shape), r.n, r.issued, r.wall.Round(10*time.Millisecond), rate, rate/c.quota,
			r.calls, r.refused, 100*float64(r.refused)/float64(max(1, r.calls)),
			hi.Round(100*time.Millisecond), lo.Round(100*time.Millisecond), r.load[0], r.load[1])
	}
}

func shapeText(c config, shape string) string {
	if shape == "window" {
		return fmt.Sprintf("fixed window %d/min", int(c.quota*60))
	}
	return fmt.Sprintf("token bucket %g/s, 0.1 s deep", c.quota)
}

// writeTrace writes issued URLs per second per process as CSV rows
// build,shape,processes,process,second,issued; a fleet row's build is
// "NAME + fleet", a known-quota row's "NAME + fleet + quota".
func writeTrace(path string, runs []replicaRun) error {
	var b strings.Builder
	b.WriteString("build,shape,processes,process,second,issued\n")
	for _, r := range runs {
		name := r.build
		name += map[string]string{"on": " + fleet", "known": " + fleet + quota"}[r.fleet]
		for p, secs := range r.perSec {
			for s, k := range secs {
				fmt.Fprintf(&b, "%s,%s,%d,%d,%d,%d\n", name, r.shape, r.n, p, s, k)
			}
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
