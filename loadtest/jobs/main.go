// Command jobs is the load scenario of bulk export jobs (issue 5). It runs
// one job per scenario and prints a Markdown table for BENCHMARKS.md:
//
//	key-10k, key-100k          whole job, RSA-2048 key signing
//	keyless-10k, keyless-100k  whole job, IAM signBlob on the emulator
//	                           (quota 1000/s, 50 ms ± 10 ms, RSA-1024),
//	                           engine ceiling = the quota
//	sharded-1, -3, -10         100k keyless, split into shards of 10k on
//	                           the real Pub/Sub emulator, 1, 3 or 10 worker
//	                           processes sharing the one quota, each
//	                           with the quota as its ceiling
//	sharded-3-adaptive         the same without a ceiling (not in the
//	                           default list)
//	sharded-1-q200, -3-q200, -10-q200
//	                           20k keyless at a 200/s quota, shards of
//	                           2k, 1, 3 or 10 worker processes with no
//	                           ceiling (each engine adapts to the 429s):
//	                           replicas as deployed, at a quota two
//	                           cores serve to ten processes (not in the
//	                           default list)
//	sharded-1-q200-fleet, -3-q200-fleet, -10-q200-fleet
//	                           the same with the fleet view on: every
//	                           worker gets a QuotaFleet on the infra's
//	                           fake-gcs-server (gs://loadtest-fleet/, one
//	                           prefix per run); the driver lists the
//	                           members twice a second while the job runs
//	                           and counts those left after the workers
//	                           exited (each deletes its own: none should
//	                           be left) (not in the default list)
//	sharded-1-q200-known, -3-q200-known, -10-q200-known
//	                           the fleet rows with --sign-quota (the
//	                           emulator's quota per minute): the workers
//	                           split it from their first call (not in
//	                           the default list)
//	capped-1, capped-3         30k keyless, quota 3000/s, each worker held
//	                           to 16 signBlob calls in flight: the case
//	                           where replicas, not the quota, bound speed
//	hmac-10k, -100k, -1m       GOOG4-HMAC (no network, no RSA)
//	key-1m, keyless-1m         the million (keyless at the 1000/s quota)
//	keyless-1m-q5000           the million keyless at a 5000/s quota
//	keyless-100k-q5000         100k keyless at a 5000/s quota
//	rsa-raw, -100k, -1m        the baseline of key signing: 10k (100k,
//	                           1M) rsa.SignPKCS1v15 on every core over
//	                           the job's strings to sign; each key row
//	                           is compared with the raw runs just
//	                           before and after it (alternate them)
//
// Keyless job processes build their signer with app.NewKeylessSigner, as
// the commands do (the fleet rows join the fleet there). A scenario's
// shard size, where it has one, is scaled by -scale with its object count
// (the number of shards stays); the others split at -shard-size.
//
// A scenario's manifest goes to the store named after @ (hmac-1m@dir), or
// to -manifest's: fake-gcs (fake-gcs-server, in the infra process), dir (a
// local directory, written by the job process: dirstore.go) or minio (a
// real MinIO in the infra process, written through s3store). -profile DIR
// writes each process's CPU profile.
//
// Each scenario gets fresh stand-ins in a process of their own
// (fake-gcs-server holding the manifest, and the IAM emulator), and the job
// runs in another process (or worker processes), so that the peak RSS
// (VmHWM from /proc/self/status) and CPU (getrusage) are the job's alone.
// The objects come from a generated source behind the jobs.Source
// interface (fake-gcs-server cannot hold 100,000 objects); the manifest is
// really written to fake-gcs-server with resumable uploads (and composed,
// when sharded). Afterwards the driver reads the manifest back, checks that
// every object is in it exactly once, and verifies every 1000th signature.
//
//	go run ./loadtest/jobs                              # every scenario, ~10 min
//	go run ./loadtest/jobs -scenarios key-10k,keyless-10k
//	go run ./loadtest/jobs -scenarios sharded-3 -scale 0.1 # a quick look
//	go run ./loadtest/jobs -scenarios sharded-1-q200,sharded-1-q200-fleet,sharded-3-q200,sharded-3-q200-fleet,sharded-10-q200,sharded-10-q200-fleet
//	go run ./loadtest/jobs -scenarios hmac-1m@dir,hmac-100k@fake-gcs,rsa-raw,key-10k@dir
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

const (
	benchHMACID     = "GOOG1BENCHMARKHMACKEY"
	benchHMACSecret = "bench-hmac-secret"
	benchEmail      = "bench@linkissuer-bench.iam.gserviceaccount.com"
	benchProject    = "linkissuer-bench"
)

// config is the command line of every role.
type config struct {
	role      string
	scenarios string
	scale     float64
	timeout   time.Duration

	// The job and the stand-ins.
	n               int
	quota, ceiling  float64
	latency, jitter time.Duration
	burst           time.Duration // the emulator bucket's depth, in time at the quota (0: one second)
	inFlight        int
	shardSize       int
	storage         string
	iamEndpoint     string
	email           string
	keyFile         string
	hmac            bool
	iamKeyFile      string
	project         string
	jobsTopic       string
	notifyTopic     string
	workerID        int
	// quotaFleet is the keyless signer's QuotaFleet URL, on the
	// fake-gcs-server at storage (workers; empty: no fleet view).
	quotaFleet string
	// signQuota is the keyless signer's known quota per minute
	// (--sign-quota; 0: unknown).
	signQuota float64
	// manifest is where manifests go: fake-gcs (the infra's
	// fake-gcs-server), dir (dirStore on a local directory) or minio.
	manifest string
	dir      string // dirStore root (children)
	s3       string // MinIO endpoint, access key and secret, space-separated (children)
	profile  string // directory for CPU profiles of the job processes
	// cpuProfile is the file a child writes its CPU profile to.
	cpuProfile string
}

// exitCode is main's, set where deferred work (a CPU profile) must still
// run.
var exitCode int

func main() {
	defer func() { os.Exit(exitCode) }()
	var c config
	flag.StringVar(&c.role, "role", "driver", "driver, or (internal) infra, run or worker")
	flag.StringVar(&c.scenarios, "scenarios", "key-10k,key-100k,keyless-10k,keyless-100k,sharded-1,sharded-3,capped-1,capped-3", "scenarios to run")
	flag.Float64Var(&c.scale, "scale", 1, "multiply every scenario's object count (0.1 for a quick look)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "time limit of each scenario")
	flag.IntVar(&c.n, "n", 0, "objects (children)")
	flag.Float64Var(&c.quota, "quota", 0, "emulator quota, calls/s (infra)")
	flag.Float64Var(&c.ceiling, "ceiling", 0, "engine rate ceiling (children)")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "emulator mean latency")
	flag.DurationVar(&c.jitter, "jitter", 10*time.Millisecond, "emulator latency spread")
	flag.DurationVar(&c.burst, "burst", 0, "emulator quota bucket depth as time at the quota, e.g. 100ms as loadtest/keyless (0: one second)")
	flag.IntVar(&c.inFlight, "in-flight", 0, "engine MaxInFlight (children; 0: 64)")
	flag.IntVar(&c.shardSize, "shard-size", 10000, "objects per shard (workers; the driver's is for scenarios without their own)")
	flag.StringVar(&c.storage, "storage", "", "fake-gcs-server URL (children)")
	flag.StringVar(&c.iamEndpoint, "iam-endpoint", "", "IAM emulator endpoint (children; empty: key signing)")
	flag.StringVar(&c.email, "email", "", "service account (children)")
	flag.StringVar(&c.keyFile, "key-file", "", "signing key (children)")
	flag.BoolVar(&c.hmac, "hmac", false, "sign with the bench HMAC key instead (children)")
	flag.StringVar(&c.iamKeyFile, "iam-key-file", "", "emulator key (infra; empty: no emulator)")
	flag.StringVar(&c.project, "project", benchProject, "Pub/Sub project (workers)")
	flag.StringVar(&c.jobsTopic, "jobs-topic", "", "jobs topic ID (workers)")
	flag.StringVar(&c.notifyTopic, "notify-topic", "", "completion topic ID (workers)")
	flag.IntVar(&c.workerID, "worker-id", 0, "worker number, for logs")
	flag.StringVar(&c.quotaFleet, "quota-fleet", "", "gs://BUCKET/PREFIX on the infra's fake-gcs-server (children; empty: no fleet view)")
	flag.Float64Var(&c.signQuota, "sign-quota", 0, "the keyless signer's known quota, calls per minute (children; 0: unknown)")
	flag.StringVar(&c.manifest, "manifest", "fake-gcs", "manifest store of scenarios without @STORE: fake-gcs, dir or minio")
	flag.StringVar(&c.dir, "dir", "", "dirStore root (children)")
	flag.StringVar(&c.s3, "s3", "", "MinIO endpoint, key and secret (children)")
	flag.StringVar(&c.profile, "profile", "", "write the CPU profiles of each scenario's processes to DIR/SCENARIO-ROLE.pprof")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "CPU profile file (children)")
	flag.Parse()

	var err error
	if c.cpuProfile != "" && c.role != "driver" {
		stop, err := startCPUProfile(c.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest/jobs:", err)
			os.Exit(1)
		}
		defer stop()
	}
	switch c.role {
	case "infra":
		err = runInfra(c)
	case "run":
		printResult(runWhole(c))
	case "worker":
		printResult(runWorker(c))
	case "raw":
		printResult(runRawRSA(c))
	case "driver":
		err = drive(c)
	default:
		err = fmt.Errorf("unknown role %q", c.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest/jobs:", err)
		exitCode = 1
	}
}

// scenario is one measured run.
type scenario struct {
	name     string
	n        int
	keyless  bool
	hmac     bool // GOOG4-HMAC: no network, no RSA
	quota    float64
	ceiling  float64
	inFlight int
	workers  int // 0: whole, in one process; else sharded over workers
	// shardSize is the scenario's objects per shard, scaled with n (0:
	// -shard-size, unscaled).
	shardSize int
	// fleet gives every worker a QuotaFleet on the infra's
	// fake-gcs-server, one prefix per run; known also tells them the
	// quota (--sign-quota).
	fleet, known bool
	// raw is the baseline of key signing: rsa.SignPKCS1v15 in a loop on
	// every core, over the job's strings to sign, no job.
	raw bool
	// store is the manifest destination: fake-gcs, dir or minio.
	store string
}

var scenarios = map[string]scenario{
	"key-10k":  {n: 10_000},
	"key-100k": {n: 100_000},
	"key-1m":   {n: 1_000_000},
	"rsa-raw":  {n: 10_000, raw: true},
	// The raw baseline at the key scenarios' sizes, to alternate with them.
	"rsa-raw-100k": {n: 100_000, raw: true},
	"rsa-raw-1m":   {n: 1_000_000, raw: true},
	"hmac-10k":     {n: 10_000, hmac: true},
	"hmac-100k":    {n: 100_000, hmac: true},
	"hmac-1m":      {n: 1_000_000, hmac: true},
	// The million keyless at the real quota: the bound is 1000 s, and the
	// emulator's CPU (1000 RSA-1024 signatures a second) stays small.
	"keyless-1m": {n: 1_000_000, keyless: true, quota: 1000, ceiling: 1000},
	// The same at 5000/s: on 2 shared cores the emulator starves the job.
	"keyless-1m-q5000":   {n: 1_000_000, keyless: true, quota: 5000, ceiling: 5000},
	"keyless-100k-q5000": {n: 100_000, keyless: true, quota: 5000, ceiling: 5000},
	"keyless-10k":        {n: 10_000, keyless: true, quota: 1000, ceiling: 1000},
	"keyless-100k":       {n: 100_000, keyless: true, quota: 1000, ceiling: 1000},
	"sharded-1":          {n: 100_000, keyless: true, quota: 1000, ceiling: 1000, workers: 1},
	"sharded-3":          {n: 100_000, keyless: true, quota: 1000, ceiling: 1000, workers: 3},
	"sharded-10":         {n: 100_000, keyless: true, quota: 1000, ceiling: 1000, workers: 10},
	// Three replicas with no ceiling: each engine finds its share of the
	// quota from the 429s.
	"sharded-3-adaptive": {n: 100_000, keyless: true, quota: 1000, workers: 3},
	// Replicas as deployed: no ceiling, at a quota two cores serve to ten
	// processes (200 RSA-1024 signatures a second in the emulator), side
	// by side without and with the fleet view.
	"sharded-1-q200":        {n: 20_000, keyless: true, quota: 200, workers: 1, shardSize: 2000},
	"sharded-3-q200":        {n: 20_000, keyless: true, quota: 200, workers: 3, shardSize: 2000},
	"sharded-10-q200":       {n: 20_000, keyless: true, quota: 200, workers: 10, shardSize: 2000},
	"sharded-1-q200-fleet":  {n: 20_000, keyless: true, quota: 200, workers: 1, shardSize: 2000, fleet: true},
	"sharded-3-q200-fleet":  {n: 20_000, keyless: true, quota: 200, workers: 3, shardSize: 2000, fleet: true},
	"sharded-10-q200-fleet": {n: 20_000, keyless: true, quota: 200, workers: 10, shardSize: 2000, fleet: true},
	"sharded-1-q200-known":  {n: 20_000, keyless: true, quota: 200, workers: 1, shardSize: 2000, fleet: true, known: true},
	"sharded-3-q200-known":  {n: 20_000, keyless: true, quota: 200, workers: 3, shardSize: 2000, fleet: true, known: true},
	"sharded-10-q200-known": {n: 20_000, keyless: true, quota: 200, workers: 10, shardSize: 2000, fleet: true, known: true},
	"capped-1":              {n: 30_000, keyless: true, quota: 3000, inFlight: 16, workers: 1},
	"capped-3":              {n: 30_000, keyless: true, quota: 3000, inFlight: 16, workers: 3},
}

// outcome is a scenario's measurements.
type outcome struct {
	scenario
	wall     time.Duration
	results  []childResult
	rows     int
	verified int
	load     string // at the start
	loadEnd  string
	// fleetSeen is the most member objects under a fleet row's prefix in
	// one listing while the job ran (twice a second; an idle member
	// deletes its own), fleetLeft the count after the workers exited
	// (-1: not counted).
	fleetSeen, fleetLeft int
}

func drive(c config) error {
	dir, err := os.MkdirTemp("", "linkissuer-jobs-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	keyFile, iamKeyFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "iam.pem")
	key, err := newKey(keyFile, 2048)
	if err != nil {
		return err
	}
	iamKey, err := newKey(iamKeyFile, 1024)
	if err != nil {
		return err
	}
	var emu *pubsubemu.Emulator
	defer func() {
		if emu != nil {
			emu.Stop()
		}
	}()
	depth := "1s"
	if c.burst > 0 {
		depth = c.burst.String()
	}
	fmt.Printf("%d CPUs, %s; emulator latency %s ± %s, RSA-1024, quota bucket %s deep\n\n", runtime.NumCPU(), runtime.Version(), c.latency, c.jitter, depth)
	var outs []outcome
	for _, name := range strings.Split(c.scenarios, ",") {
		name = strings.TrimSpace(name)
		base, store, found := strings.Cut(name, "@")
		s, ok := scenarios[base]
		if !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		s.name, s.store = name, c.manifest
		if found {
			s.store = store
		}
		switch s.store {
		case "fake-gcs", "dir", "minio":
		default:
			return fmt.Errorf("%s: unknown manifest store %q (fake-gcs, dir or minio)", name, s.store)
		}
		s.n = int(float64(s.n) * c.scale)
		if s.shardSize > 0 {
			s.shardSize = max(1, int(float64(s.shardSize)*c.scale))
		}
		if s.workers > 0 && emu == nil {
			if emu, err = pubsubemu.Start(context.Background(), nil); err != nil {
				return err
			}
			os.Setenv("PUBSUB_EMULATOR_HOST", emu.Host)
		}
		pub := &key.PublicKey
		if s.keyless {
			pub = &iamKey.PublicKey
		}
		o, err := runScenario(c, s, dir, keyFile, iamKeyFile, pub)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		o.loadEnd = loadAverage()
		fmt.Fprintf(os.Stderr, "%s: %s\n", s.name, o.wall.Round(time.Millisecond))
		outs = append(outs, o)
		// Each row as it is done, so a run stopped later keeps it.
		printTable(os.Stderr, outs, c.latency)
	}
	printTable(os.Stdout, outs, c.latency)
	return nil
}

// profileArgs asks a child for a CPU profile in c.profile, if set.
func profileArgs(c config, s scenario, role string) []string {
	if c.profile == "" {
		return nil
	}
	return []string{"-cpuprofile", filepath.Join(c.profile, strings.ReplaceAll(s.name, "@", "-")+"-"+role+".pprof")}
}

// storeArgs are the job processes' flags for s's manifest store.
func storeArgs(s scenario, dir string, info infraInfo) []string {
	switch s.store {
	case "dir":
		return []string{"-manifest", "dir", "-dir", dir}
	case "minio":
		return []string{"-manifest", "minio", "-s3", info.S3}
	}
	return []string{"-manifest", "fake-gcs"}
}

func newKey(path string, bits int) (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return k, os.WriteFile(path, pemData, 0o600)
}

// child is a started process of this program and its stdout.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startChild(env []string, args ...string) (*child, error) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}, nil
}

// read decodes the child's next output line into v.
func (ch *child) read(v any) error {
	line, err := ch.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("child %v: %w", ch.cmd.Args[1:3], err)
	}
	return json.Unmarshal(line, v)
}

// stop closes the child's stdin, signals it, and waits.
func (ch *child) stop(sig os.Signal) error {
	ch.stdin.Close()
	if sig != nil {
		ch.cmd.Process.Signal(sig)
	}
	return ch.cmd.Wait()
}

// runChild runs one child of this program to its end and returns the
// result it reports; a result that carries an error is an error.
func runChild(args ...string) (childResult, error) {
	run, err := startChild(nil, args...)
	if err != nil {
		return childResult{}, err
	}
	var r childResult
	err = run.read(&r)
	run.stop(nil)
	if err == nil && r.Err != "" {
		err = errors.New(r.Err)
	}
	return r, err
}

func runScenario(c config, s scenario, tmp, keyFile, iamKeyFile string, pub *rsa.PublicKey) (outcome, error) {
	o := outcome{scenario: s, load: loadAverage(), fleetSeen: -1, fleetLeft: -1}
	profile := func(role string) []string { return profileArgs(c, s, role) }
	infraArgs := append([]string{"-role", "infra"}, profile("infra")...)
	if s.store == "minio" {
		infraArgs = append(infraArgs, "-manifest", "minio")
	}
	if s.keyless {
		infraArgs = append(infraArgs, "-iam-key-file", iamKeyFile, "-quota", fmt.Sprint(s.quota),
			"-latency", c.latency.String(), "-jitter", c.jitter.String(), "-burst", c.burst.String())
	}
	infra, err := startChild(nil, infraArgs...)
	if err != nil {
		return o, err
	}
	defer infra.stop(nil)
	var info infraInfo
	if err := infra.read(&info); err != nil {
		return o, err
	}
	shardSize := c.shardSize
	if s.shardSize > 0 {
		shardSize = s.shardSize
	}
	args := []string{"-n", strconv.Itoa(s.n), "-storage", info.Storage, "-key-file", keyFile,
		"-ceiling", fmt.Sprint(s.ceiling), "-in-flight", strconv.Itoa(s.inFlight), "-shard-size", strconv.Itoa(shardSize)}
	storeDir := filepath.Join(tmp, "store-"+strings.ReplaceAll(s.name, "@", "-"))
	defer os.RemoveAll(storeDir)
	args = append(args, storeArgs(s, storeDir, info)...)
	if s.raw {
		r, err := runChild(append([]string{"-role", "raw"}, args...)...)
		o.wall, o.results, o.rows = time.Duration(r.WallMS)*time.Millisecond, []childResult{r}, r.Rows
		return o, err
	}
	if s.keyless {
		args = append(args, "-iam-endpoint", info.IAMEndpoint, "-email", info.Email)
	}
	if s.hmac {
		args = append(args, "-hmac")
	}
	var fleetPrefix string
	if s.fleet {
		if !s.keyless || s.workers == 0 {
			return o, errors.New("the fleet view is for sharded keyless scenarios")
		}
		fleetRuns++
		fleetPrefix = fmt.Sprintf("jobs/%s-%d/", strings.ReplaceAll(s.name, "@", "-"), fleetRuns)
		args = append(args, "-quota-fleet", "gs://"+fleetBucket+"/"+fleetPrefix)
		if s.known {
			args = append(args, "-sign-quota", strconv.FormatFloat(60*s.quota, 'f', -1, 64))
		}
	}
	id := "whole"
	if s.workers == 0 {
		r, err := runChild(append(append([]string{"-role", "run"}, profile("run")...), args...)...)
		if err != nil {
			return o, err
		}
		o.wall, o.results = time.Duration(r.WallMS)*time.Millisecond, []childResult{r}
	} else {
		id = s.name
		// A fleet row's members, counted while the job runs: the count
		// left afterwards means something only if they were there.
		var during func(context.Context)
		if s.fleet {
			during = func(ctx context.Context) {
				t := time.NewTicker(500 * time.Millisecond)
				defer t.Stop()
				for {
					if n, err := countObjects(info.Storage, fleetBucket, fleetPrefix); err == nil {
						o.fleetSeen = max(o.fleetSeen, n)
					}
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
				}
			}
		}
		if err := runSharded(c, s, args, &o, during); err != nil {
			return o, err
		}
	}
	if s.fleet {
		// Every worker has exited (runSharded waits for them): each
		// deleted its own member object as its signer closed.
		if o.fleetLeft, err = countObjects(info.Storage, fleetBucket, fleetPrefix); err != nil {
			return o, fmt.Errorf("listing the fleet prefix: %w", err)
		}
		fmt.Fprintf(os.Stderr, "%s: gs://%s/%s: at most %d member objects while the job ran, %d left after the workers exited\n",
			s.name, fleetBucket, fleetPrefix, o.fleetSeen, o.fleetLeft)
	}
	verify := func(p *sign.ParsedURL) error { return p.VerifyRSA(pub) }
	if s.hmac {
		verify = func(p *sign.ParsedURL) error { return p.VerifyHMAC([]byte(benchHMACSecret)) }
	}
	store, closeStore, err := openStore(context.Background(), config{manifest: s.store, storage: info.Storage, dir: storeDir, s3: info.S3})
	if err != nil {
		return o, err
	}
	defer closeStore()
	o.rows, o.verified, err = checkManifest(store, id+".jsonl", s.n, verify)
	return o, err
}

// fleetBucket is the bucket on the infra's fake-gcs-server that holds the
// fleet rows' prefixes; fleetRuns numbers the fleet rows of this run, one
// prefix each.
const fleetBucket = "loadtest-fleet"

var fleetRuns int

// countObjects counts the objects under gs://bucket/prefix on the
// fake-gcs-server at storageURL.
func countObjects(storageURL, bucket, prefix string) (int, error) {
	ctx := context.Background()
	client, err := app.StorageClient(ctx, storageURL)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	n := 0
	it := client.Bucket(bucket).Objects(ctx, &storage.Query{Prefix: prefix})
	for {
		_, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// runSharded starts the workers, submits the job, and times it from the
// publish to the completion message. during, if not nil, runs from the
// publish until the job is done (or the time is up), in a goroutine of its
// own: it returns when its context ends.
func runSharded(c config, s scenario, args []string, o *outcome, during func(context.Context)) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	client, err := pubsub.NewClient(ctx, benchProject)
	if err != nil {
		return err
	}
	defer client.Close()
	jobsTopic, notifyTopic := "jobs-"+s.name, "notify-"+s.name
	for _, t := range []string{jobsTopic, notifyTopic} {
		if err := pubsubemu.EnsureTopic(ctx, client, t); err != nil {
			return err
		}
		if err := pubsubemu.EnsureSubscription(ctx, client, pubsubemu.Subscription{ID: t + "-sub", Topic: t, AckDeadline: 600 * time.Second}); err != nil {
			return err
		}
	}
	args = append(args, "-jobs-topic", jobsTopic, "-notify-topic", notifyTopic)
	var workers []*child
	for i := range s.workers {
		w, err := startChild(nil, append(append([]string{"-role", "worker", "-worker-id", strconv.Itoa(i)}, profileArgs(c, s, fmt.Sprint("worker", i))...), args...)...)
		if err != nil {
			return err
		}
		workers = append(workers, w)
	}
	job := benchJob(c, s.name)
	job.NotifyTopic = pubsubemu.TopicName(benchProject, notifyTopic)
	data, err := json.Marshal(job)
	if err != nil {
		return err
	}
	start := time.Now()
	p := client.Publisher(jobsTopic)
	_, err = p.Publish(ctx, &pubsub.Message{Data: data, Attributes: job.Attributes()}).Get(ctx)
	p.Stop()
	if err != nil {
		return err
	}
	rctx, done := context.WithCancel(ctx)
	watched := make(chan struct{})
	if during == nil {
		close(watched)
	} else {
		go func() {
			defer close(watched)
			during(rctx)
		}()
	}
	var got *schema.JobDone
	err = client.Subscriber(notifyTopic+"-sub").Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		var d schema.JobDone
		if json.Unmarshal(m.Data, &d) == nil && got == nil {
			got = &d
			o.wall = time.Since(start)
		}
		done()
	})
	done()
	<-watched
	for _, w := range workers {
		var r childResult
		w.stdin.Close()
		w.cmd.Process.Signal(syscall.SIGTERM)
		if rerr := w.read(&r); rerr == nil {
			o.results = append(o.results, r)
		}
		w.cmd.Wait()
	}
	if got == nil {
		return fmt.Errorf("no completion within %s (%v)", c.timeout, err)
	}
	o.results = append(o.results, childResult{Counts: got.Counts, Shards: got.Shards})
	return nil
}

// checkManifest reads a manifest back: every generated object exactly once,
// every 1000th signature verified.
func checkManifest(store jobs.Store, name string, n int, verify func(*sign.ParsedURL) error) (rows, verified int, err error) {
	r, err := store.NewReader(context.Background(), "exports", name)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	rr, err := schema.NewRowReader(r, schema.FormatJSONL, nil)
	if err != nil {
		return 0, 0, err
	}
	seen := make([]bool, n)
	for {
		row, err := rr.ReadRow()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rows, verified, err
		}
		rows++
		i, err := strconv.Atoi(strings.TrimPrefix(row.Object, genPrefix))
		if err != nil || i >= n || seen[i] {
			return rows, verified, fmt.Errorf("row %d: %s is unknown or repeated", rows, row.Object)
		}
		seen[i] = true
		if i%1000 == 0 {
			p, err := sign.ParseSignedURL(row.URL, "GET", nil)
			if err == nil {
				err = verify(p)
			}
			if err != nil {
				return rows, verified, fmt.Errorf("%s: %w", row.Object, err)
			}
			verified++
		}
	}
	if rows != n {
		return rows, verified, fmt.Errorf("%d rows for %d objects", rows, n)
	}
	return rows, verified, nil
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

func printTable(w io.Writer, outs []outcome, latency time.Duration) {
	// The raw RSA rate of this run, the bound of key signing.
	var rawRate float64
	for _, o := range outs {
		if o.raw && o.wall > 0 {
			rawRate = float64(o.rows) / o.wall.Seconds()
		}
	}
	fmt.Fprintln(w, "| scenario | objects | signer | manifest to | workers | wall | bound | wall / bound | URLs/s | peak RSS (VmHWM) | CPU | CPU / wall | signBlob calls | throttled (429) | fleet view | rows checked | load avg at start | at end |")
	fmt.Fprintln(w, "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|")
	for _, o := range outs {
		signer, bound, ratio := "key (RSA-2048)", "-", "-"
		if o.raw {
			signer = fmt.Sprintf("raw rsa.SignPKCS1v15, RSA-2048, %d goroutines", runtime.NumCPU())
		} else if !o.hmac && !o.keyless && rawRate > 0 {
			// Key signing's bound: the same number of signatures at the
			// raw rate of this run.
			b := time.Duration(float64(o.n) / rawRate * float64(time.Second))
			bound, ratio = b.Round(time.Millisecond).String()+" (raw RSA)", fmt.Sprintf("%.3f", o.wall.Seconds()/b.Seconds())
		}
		if o.hmac {
			// The bound for a million HMAC rows: 60 s.
			signer, bound, ratio = "GOOG4-HMAC", "60s (1M)", "-"
			if o.n == 1_000_000 {
				ratio = fmt.Sprintf("%.3f", o.wall.Seconds()/60)
			}
		}
		if o.keyless {
			signer = fmt.Sprintf("keyless, quota %g/s", o.quota)
			if o.inFlight > 0 {
				signer += fmt.Sprintf(", %d in flight per worker", o.inFlight)
			}
			// The bound is the quota, or the workers' in-flight limit
			// over the emulator's latency when that is lower.
			rate := o.quota
			if o.inFlight > 0 {
				rate = min(rate, float64(max(1, o.workers)*o.inFlight)/latency.Seconds())
			}
			b := time.Duration(float64(o.n) / rate * float64(time.Second))
			bound, ratio = b.Round(time.Millisecond).String(), fmt.Sprintf("%.3f", o.wall.Seconds()/b.Seconds())
		}
		workers := "1 (whole job)"
		if o.workers > 0 {
			workers = strconv.Itoa(o.workers)
		}
		store := o.store
		if o.raw {
			store, workers = "-", "-"
		}
		var rss, cpu []string
		var calls, throttled, cpuMS int64
		for _, r := range o.results {
			if r.HWMKB > 0 {
				rss = append(rss, fmt.Sprintf("%.1f MB", float64(r.HWMKB)/1024))
				cpu = append(cpu, (time.Duration(r.CPUMS) * time.Millisecond).Round(100*time.Millisecond).String())
				cpuMS += r.CPUMS
			}
			calls += r.Calls
			throttled += r.Throttle
		}
		// The job processes' CPU over the wall time: near the cores' count
		// when CPU-bound and not starved, far below it when waiting for a
		// CPU (or, keyless, for the quota).
		cpuWall := "-"
		if o.wall > 0 {
			cpuWall = fmt.Sprintf("%.2f", float64(cpuMS)/float64(o.wall.Milliseconds()))
		}
		callsText, throttledText := "-", "-"
		if o.keyless {
			callsText, throttledText = strconv.FormatInt(calls, 10), strconv.FormatInt(throttled, 10)
			if calls > 0 {
				throttledText += fmt.Sprintf(" (%.1f%%)", 100*float64(throttled)/float64(calls))
			}
		}
		fleet := "-"
		if o.fleet {
			count := func(n int) string {
				if n < 0 {
					return "?"
				}
				return strconv.Itoa(n)
			}
			fleet = fmt.Sprintf("on: up to %s members during the job, %s left after exit", count(o.fleetSeen), count(o.fleetLeft))
		} else if o.keyless && o.workers > 0 {
			fleet = "off"
		}
		checked := fmt.Sprintf("%d, %d verified", o.rows, o.verified)
		if o.raw {
			checked = "-"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			o.name, o.n, signer, store, workers, o.wall.Round(time.Millisecond), bound, ratio, float64(o.n)/o.wall.Seconds(),
			strings.Join(rss, ", "), strings.Join(cpu, ", "), cpuWall, callsText, throttledText, fleet, checked, o.load, o.loadEnd)
	}
	// Each key row against the raw runs just before and just after it: on
	// shared cores the rates move between runs, so the rounds are compared
	// with their neighbours, not with one baseline. (The raw rate does not
	// depend on the count; key-1m can be bracketed by rsa-raw-100k.)
	for i, o := range outs {
		if o.raw || o.hmac || o.keyless || o.wall <= 0 {
			continue
		}
		rate := float64(o.n) / o.wall.Seconds()
		for _, j := range []int{rawNeighbour(outs, i, -1), rawNeighbour(outs, i, 1)} {
			if j < 0 {
				continue
			}
			when := "before"
			if j > i {
				when = "after"
			}
			raw := float64(outs[j].rows) / outs[j].wall.Seconds()
			fmt.Fprintf(w, "\n%s: %.3f x raw RSA %s (%s: %.0f URLs/s against %.0f signatures/s)", o.name, rate/raw, when, outs[j].name, rate, raw)
		}
	}
	fmt.Fprintln(w)
}

// rawNeighbour is the index of the nearest raw RSA run from outs[i] in
// direction dir (-1 or 1), or -1.
func rawNeighbour(outs []outcome, i, dir int) int {
	for j := i + dir; j >= 0 && j < len(outs); j += dir {
		if outs[j].raw && outs[j].wall > 0 {
			return j
		}
	}
	return -1
}
