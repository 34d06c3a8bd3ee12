package main

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/linkissuer/linkissuer/app"
	cfg "github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
	"github.com/linkissuer/linkissuer/worker"
)

// childResult is what a measured process prints when it is done.
type childResult struct {
	WallMS   int64            `json:"wall_ms,omitempty"`
	HWMKB    int64            `json:"hwm_kb"`
	CPUMS    int64            `json:"cpu_ms"`
	Counts   schema.JobCounts `json:"counts"`
	Shards   int              `json:"shards,omitempty"`
	Messages int              `json:"messages,omitempty"`
	Calls    int64            `json:"calls,omitempty"` // signBlob calls
	Throttle int64            `json:"throttled,omitempty"`
	Retries  int64            `json:"retries,omitempty"`
	Rows     int              `json:"rows,omitempty"` // raw: signatures made
	Err      string           `json:"error,omitempty"`
}

// setup is what a job-running process signs and writes with.
type setup struct {
	store  jobs.Store
	runner *jobs.Runner
	eng    *engine.Engine
	close  func()
}

// newSetup builds the storage client (to the infra's fake-gcs-server), the
// signer (a key, or IAM signBlob on the emulator behind the engine), the
// generated source and a Runner. pub and split are for workers.
func newSetup(ctx context.Context, c config, pub worker.Publisher, split *jobs.SplitOptions) (*setup, error) {
	store, closeStore, err := openStore(ctx, c)
	if err != nil {
		return nil, err
	}
	s := &setup{store: store, close: closeStore}
	var signer sign.Signer
	if c.hmac {
		if signer, err = sign.NewHMACSigner(benchHMACID, benchHMACSecret); err != nil {
			return nil, err
		}
	} else if c.iamEndpoint == "" {
		if signer, err = sign.LoadKeyFile(c.keyFile, benchEmail); err != nil {
			return nil, err
		}
	} else {
		// As the commands build it: IAM signBlob behind the engine, a
		// member of the quota fleet when one is named. The emulator's
		// http:// endpoint needs no credentials, and the email is given,
		// so nothing is looked up in the environment.
		keyless, err := app.NewKeylessSigner(ctx, &cfg.Keyless{
			ServiceAccount: c.email, IAMEndpoint: c.iamEndpoint, InFlight: c.inFlight, Ceiling: c.ceiling, Quota: c.signQuota,
			Fleet: cfg.QuotaFleet{URL: c.quotaFleet, EmulatorHost: c.storage},
		}, fleetLogger())
		if err != nil {
			closeStore()
			return nil, err
		}
		// Close leaves the fleet: this process's member object is
		// deleted before it reports.
		s.close = func() {
			keyless.Close()
			closeStore()
		}
		s.eng, signer = keyless.Engine, keyless
	}
	urls, err := sign.New(signer, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: c.storage}})
	if err != nil {
		return nil, err
	}
	pol, err := policy.New(policy.Config{Allow: []string{"media", "exports"}, MaxExpiry: time.Hour})
	if err != nil {
		return nil, err
	}
	concurrency := 4 * runtime.NumCPU()
	if s.eng != nil {
		concurrency = 2 * s.eng.Options().MaxInFlight
	}
	// The sharded scenario's job names its notify_topic in the bench
	// project, as a real job names one in the worker's project.
	topics, err := jobs.NewTopicAllow([]string{c.project})
	if err != nil {
		return nil, err
	}
	s.runner, err = jobs.New(jobs.Options{
		Backends: jobs.GCSOnly(jobs.Backend{Source: genSource{n: c.n}, Signer: urls, Store: s.store}), Policy: pol,
		Publisher: pub, Topics: topics, Split: split, Concurrency: concurrency,
	})
	return s, err
}

// fleetLogger logs the quota fleet's warnings (a store failing) to
// stderr; its info lines are left out.
func fleetLogger() *zap.Logger {
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	zc.OutputPaths = []string{"stderr"}
	log, err := zc.Build()
	if err != nil {
		return zap.NewNop()
	}
	return log
}

// openStore opens c's manifest store: the infra's fake-gcs-server, a
// dirStore, or the infra's MinIO through s3store.
func openStore(ctx context.Context, c config) (jobs.Store, func(), error) {
	switch c.manifest {
	case "dir":
		return dirStore{root: c.dir}, func() {}, nil
	case "minio":
		f := strings.Fields(c.s3)
		if len(f) != 3 {
			return nil, nil, fmt.Errorf("-s3 %q: want ENDPOINT KEY SECRET", c.s3)
		}
		cl, err := s3store.NewClient(s3store.Config{Endpoint: f[0], Region: "us-east-1", Key: s3store.HMACKey{AccessID: f[1], Secret: f[2]}}, nil)
		if err != nil {
			return nil, nil, err
		}
		return cl, func() {}, nil
	}
	client, err := storage.NewClient(ctx, option.WithEndpoint(c.storage+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		return nil, nil, err
	}
	return gcsstore.New(client), func() { client.Close() }, nil
}

// runRawRSA is the baseline of key signing: c.n signatures with
// rsa.SignPKCS1v15 (SHA-256, as sign.KeySigner makes them) on
// runtime.NumCPU() goroutines, over the strings to sign of the job's first
// 1000 objects (captured from sign.URLSigner), with nothing else: no
// policy, no rows, no store.
func runRawRSA(c config) childResult {
	ctx := context.Background()
	data, err := os.ReadFile(c.keyFile)
	if err != nil {
		return childResult{Err: err.Error()}
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return childResult{Err: c.keyFile + ": no PEM block"}
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		return childResult{Err: err.Error()}
	}
	capture := &captureSigner{}
	urls, err := sign.New(capture, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: c.storage}})
	if err != nil {
		return childResult{Err: err.Error()}
	}
	now := time.Now().UTC().Truncate(time.Second)
	for i := range min(1000, max(1, c.n)) {
		if _, err := urls.Sign(ctx, sign.Request{Method: "GET", Bucket: "media", Object: genName(i), Expires: time.Hour, Time: now}); err != nil {
			return childResult{Err: err.Error()}
		}
	}
	var next atomic.Int64
	var g errgroup.Group
	start := time.Now()
	for range runtime.NumCPU() {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= c.n {
					return nil
				}
				sum := sha256.Sum256(capture.strings[i%len(capture.strings)])
				if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
					return err
				}
			}
		})
	}
	err = g.Wait()
	r := childResult{WallMS: time.Since(start).Milliseconds(), HWMKB: vmHWM(), CPUMS: cpuMS(), Rows: c.n}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// captureSigner keeps the strings it is asked to sign and returns a
// signature of RSA-2048's length.
type captureSigner struct {
	strings [][]byte
}

func (s *captureSigner) Credential() sign.Credential {
	return sign.Credential{Identity: benchEmail, Kind: sign.KindRSA}
}

func (s *captureSigner) Sign(_ context.Context, _ sign.Scope, stringToSign []byte) ([]byte, error) {
	s.strings = append(s.strings, slices.Clone(stringToSign))
	return make([]byte, 256), nil
}

// startCPUProfile profiles this process's CPU into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func (s *setup) stats(r *childResult) {
	if s.eng != nil {
		st := s.eng.Stats()
		r.Calls, r.Throttle, r.Retries = int64(st.Calls), int64(st.Throttled), int64(st.Retries)
	}
}

// runWhole runs one job whole in this process (the export command's path)
// and reports wall time, peak RSS and CPU.
func runWhole(c config) childResult {
	ctx := context.Background()
	s, err := newSetup(ctx, c, nil, nil)
	if err != nil {
		return childResult{Err: err.Error()}
	}
	defer s.close()
	start := time.Now()
	done, err := s.runner.Run(ctx, benchJob(c, "whole"))
	r := childResult{WallMS: time.Since(start).Milliseconds(), HWMKB: vmHWM(), CPUMS: cpuMS()}
	s.stats(&r)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.Counts, r.Shards = done.Counts, done.Shards
	return r
}

// benchJob is the job every scenario runs: GET links, 1h, for every object
// under bench/, into gs://exports/JOB.jsonl.
func benchJob(c config, id string) *schema.Job {
	return &schema.Job{
		JobID: id, Source: schema.JobSource{Bucket: "media", Prefix: genPrefix}, Method: "GET", ExpiresIn: "1h",
		Output: schema.JobOutput{Manifest: &schema.ManifestTarget{URI: "gs://exports/" + id + ".jsonl", Format: schema.FormatJSONL}},
	}
}

// runWorker is one replica of the sharded scenario: it pulls job messages
// one at a time with unary Pull (max_messages 1, as real Pub/Sub's flow
// control would hand them out; the emulator's streaming pull gives every
// waiting message to one stream), runs them through the worker's Router,
// and acks or nacks. It stops on SIGTERM and reports.
func runWorker(c config) childResult {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	client, err := pubsub.NewClient(ctx, c.project)
	if err != nil {
		return childResult{Err: err.Error()}
	}
	defer client.Close()
	settings := pubsub.PublishSettings{DelayThreshold: 2 * time.Millisecond, CountThreshold: 100}
	topics := worker.NewTopicPublisher(client, map[string]string{
		worker.TopicJobs: c.jobsTopic, worker.TopicResults: c.notifyTopic, worker.TopicErrors: c.notifyTopic,
	}, settings, nil)
	defer topics.Stop()
	pub := worker.NewNamedTopics(client, topics, settings)
	defer pub.Stop()
	s, err := newSetup(context.WithoutCancel(ctx), c, pub, &jobs.SplitOptions{Above: c.shardSize, ShardSize: c.shardSize})
	if err != nil {
		return childResult{Err: err.Error()}
	}
	defer s.close()
	issuer := &links.Issuer{Jobs: s.runner.Handle}
	router, err := worker.NewRouter(issuer.Handle, pub, worker.RouterOptions{DeadLetter: worker.DeadLetters("bench", nil)})
	if err != nil {
		return childResult{Err: err.Error()}
	}
	var messages atomic.Int64
	sub := pubsubemu.SubscriptionName(c.project, c.jobsTopic+"-sub")
	for ctx.Err() == nil {
		resp, err := client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 1})
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		for _, rm := range resp.ReceivedMessages {
			m := &worker.Message{ID: rm.Message.MessageId, Data: rm.Message.Data, Attributes: rm.Message.Attributes}
			d := router.Process(context.WithoutCancel(ctx), m)
			messages.Add(1)
			if d.Ack {
				err = client.SubscriptionAdminClient.Acknowledge(context.WithoutCancel(ctx), &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: []string{rm.AckId}})
			} else {
				err = client.SubscriptionAdminClient.ModifyAckDeadline(context.WithoutCancel(ctx), &pubsubpb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: []string{rm.AckId}})
			}
			if err != nil || d.Err != nil {
				fmt.Fprintf(os.Stderr, "worker %d: message %s: %v %v\n", c.workerID, m.ID, d.Err, err)
			}
		}
	}
	r := childResult{HWMKB: vmHWM(), CPUMS: cpuMS(), Messages: int(messages.Load())}
	s.stats(&r)
	return r
}

// vmHWM is this process's peak resident set size, in kB.
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// cpuMS is the CPU time (user + system) this process used, in ms.
func cpuMS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return (ru.Utime.Nano() + ru.Stime.Nano()) / 1e6
}

func printResult(r childResult) {
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
