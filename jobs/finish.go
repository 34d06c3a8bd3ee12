package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// maxStateObject bounds what is read back of a marker, plan or completion
// record.
const maxStateObject = 16 << 20

// completion is the record of a finished job: who finished it and what it
// announced. A redelivery of the finishing message announces it again.
type completion struct {
	Owner string          `json:"owner"`
	Done  *schema.JobDone `json:"done"`
}

// runRoot runs a root job: whole, or by publishing its shards.
func (r *Runner) runRoot(ctx context.Context, t *task, log *zap.Logger) ([]worker.Output, error) {
	if outs, done, err := r.announced(ctx, t); done || err != nil {
		return outs, err
	}
	// Refuse a taken manifest URI before anything is signed or split.
	guard, err := r.manifestGuard(ctx, t)
	if err != nil {
		return nil, err
	}
	if r.o.Split != nil {
		p, err := r.readPlan(ctx, t)
		if errors.Is(err, ErrNotFound) {
			if p, err = r.makePlan(ctx, t); err == nil && p != nil {
				p, err = r.writePlan(ctx, t, p)
			}
		}
		if err != nil {
			return nil, err
		}
		if p != nil {
			log.Info("job split", zap.Int("shards", p.Count))
			return shardOutputs(t, p)
		}
	}
	out := r.wholeOut(t)
	out.guard = guard
	res, err := r.runPiece(ctx, t, pieceOf(t.job), out)
	if err != nil {
		return nil, r.guardFailed(ctx, t, err)
	}
	done, err := r.jobDone(ctx, t, res.Counts, res.Errors, 1, res.StartedAt)
	if err != nil {
		return nil, err
	}
	log.Info("job done", zap.Int64("listed", done.Counts.Listed), zap.Int64("signed", done.Counts.Signed),
		zap.Int64("skipped", done.Counts.Skipped), zap.Int64("failed", done.Counts.Failed))
	return r.complete(ctx, t, done)
}

// wholeOut writes a job run whole straight to its final objects.
func (r *Runner) wholeOut(t *task) pieceOut {
	header := t.format().HasHeader()
	return pieceOut{rows: t.lay.manifest, errors: t.lay.errors, rowHeader: header, errHeader: header}
}

// runShard runs one shard unless its marker says it ran, then tries to
// finish the job.
func (r *Runner) runShard(ctx context.Context, t *task, log *zap.Logger) ([]worker.Output, error) {
	i := t.job.Shard.Index
	_, err := r.readJSON(ctx, t, t.lay.marker(i), &pieceResult{})
	switch {
	case errors.Is(err, ErrNotFound):
		out := pieceOut{errors: t.lay.partErrors(i)}
		if t.lay.manifest != "" {
			out.rows = t.lay.part(i)
		}
		res, err := r.runPiece(ctx, t, pieceOf(t.job), out)
		if err != nil {
			return nil, err
		}
		if err := r.writeJSON(ctx, t, t.lay.marker(i), res); err != nil && !errors.Is(err, ErrExists) {
			return nil, err
		}
		log.Info("shard done", zap.Int64("listed", res.Counts.Listed), zap.Int64("signed", res.Counts.Signed))
	case err != nil:
		return nil, err
	default:
		log.Info("shard already done")
	}
	return r.tryFinish(ctx, t, log)
}

// tryFinish finishes the job if every shard is done and this shard wins
// (or, on redelivery, already holds) the finish lock.
func (r *Runner) tryFinish(ctx context.Context, t *task, log *zap.Logger) ([]worker.Output, error) {
	if outs, done, err := r.announced(ctx, t); done || err != nil {
		return outs, err
	}
	n := 0
	for _, err := range t.store.List(ctx, ListQuery{Bucket: t.lay.bucket, Prefix: t.lay.markerDir(), NamesOnly: true}) {
		if err != nil {
			return nil, err
		}
		n++
	}
	if n < t.job.Shard.Count {
		return nil, nil
	}
	if ok, err := r.acquireFinish(ctx, t, log); !ok || err != nil {
		if err == nil {
			// Announced while this delivery waited (a redelivery of
			// the finishing message publishes it again), or held for
			// good on a store without leases.
			outs, _, err := r.announced(ctx, t)
			return outs, err
		}
		return nil, err
	}
	log.Info("finishing job", zap.Int("shards", t.job.Shard.Count))
	outs, err := r.finish(ctx, t)
	if err != nil {
		return nil, err
	}
	log.Info("job done", zap.String("root_job_id", t.rootID), zap.Int("shards", t.job.Shard.Count))
	return outs, nil
}

// finish composes the parts into the final manifest (and errors file),
// records the completion and returns it.
func (r *Runner) finish(ctx context.Context, t *task) ([]worker.Output, error) {
	count := t.job.Shard.Count
	results := make([]pieceResult, count)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range count {
		g.Go(func() error {
			_, err := r.readJSON(gctx, t, t.lay.marker(i), &results[i])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var (
		counts    schema.JobCounts
		errParts  []string
		started   = results[0].StartedAt
		parts     []string
		temporary []string
	)
	for i, res := range results {
		counts.Listed += res.Counts.Listed
		counts.Signed += res.Counts.Signed
		counts.Skipped += res.Counts.Skipped
		counts.Failed += res.Counts.Failed
		if res.Errors {
			errParts = append(errParts, t.lay.partErrors(i))
		}
		if res.StartedAt.Before(started) {
			started = res.StartedAt
		}
		parts = append(parts, t.lay.part(i))
	}
	if p, err := r.readPlan(ctx, t); err == nil {
		started = p.CreatedAt
	}
	format := t.format()
	if t.lay.manifest != "" {
		guard, err := r.manifestGuard(ctx, t)
		if err != nil {
			return nil, err
		}
		tmp, err := r.composeFile(ctx, t, "rows", parts, t.lay.manifest, guard, format, schema.ManifestCSVHeader, schema.ManifestRowV1)
		temporary = append(append(temporary, tmp...), parts...)
		if err != nil {
			return nil, r.guardFailed(ctx, t, err)
		}
	}
	if len(errParts) > 0 {
		tmp, err := r.composeFile(ctx, t, "errors", errParts, t.lay.errors, WriteOptions{}, format, schema.ErrorCSVHeader, schema.ManifestErrorRowV1)
		temporary = append(append(temporary, tmp...), errParts...)
		if err != nil {
			return nil, err
		}
	}
	done, err := r.jobDone(ctx, t, counts, len(errParts) > 0, count, started)
	if err != nil {
		return nil, err
	}
	outs, err := r.complete(ctx, t, done)
	if err != nil {
		return nil, err
	}
	r.cleanup(ctx, t, temporary)
	return outs, nil
}

// composeFile composes srcs, after a header object when format has one,
// into dst, in a tree of compose calls of at most MaxComposeSources. It
// returns the temporary objects it made.
func (r *Runner) composeFile(ctx context.Context, t *task, kind string, srcs []string, dst string, guard WriteOptions, format schema.ManifestFormat, header []string, rowSchema string) ([]string, error) {
	var temporary []string
	if format.HasHeader() {
		var b bytes.Buffer
		w, err := schema.NewRowWriter(&b, format, header)
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return nil, err
		}
		name := t.lay.header(kind)
		if err := r.writeObject(ctx, t, name, b.Bytes(), false); err != nil {
			return nil, err
		}
		temporary = append(temporary, name)
		srcs = append([]string{name}, srcs...)
	}
	o := r.writeOptions(t, t.format(), rowSchema)
	for level := 0; len(srcs) > MaxComposeSources; level++ {
		next := make([]string, (len(srcs)+MaxComposeSources-1)/MaxComposeSources)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for i := range next {
			next[i] = t.lay.composite(kind, level, i)
			group := srcs[i*MaxComposeSources : min(len(srcs), (i+1)*MaxComposeSources)]
			g.Go(func() error { return t.store.Compose(gctx, t.lay.bucket, next[i], group, o) })
		}
		temporary = append(temporary, next...)
		if err := g.Wait(); err != nil {
			return temporary, err
		}
		srcs = next
	}
	o.IfAbsent, o.IfGeneration = guard.IfAbsent, guard.IfGeneration
	return temporary, t.store.Compose(ctx, t.lay.bucket, dst, srcs, o)
}

// cleanup deletes parts and temporary composites; failures are only
// logged (the objects are garbage, not state).
func (r *Runner) cleanup(ctx context.Context, t *task, names []string) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, n := range names {
		g.Go(func() error {
			if err := t.store.Delete(gctx, t.lay.bucket, n); err != nil {
				r.o.Logger.Warn("cannot delete a job's temporary object", zap.String("object", t.lay.uri(n)), zap.Error(err))
			}
			return nil
		})
	}
	_ = g.Wait() // every function returns nil
}

// jobDone builds the completion message, signing the manifest's URL.
func (r *Runner) jobDone(ctx context.Context, t *task, counts schema.JobCounts, errorsWritten bool, shards int, started time.Time) (*schema.JobDone, error) {
	now := r.o.Now().UTC()
	if now.Before(started) {
		now = started // another replica's clock
	}
	d := schema.JobDone{JobID: t.rootID, Counts: counts, Shards: shards, StartedAt: started, FinishedAt: now}
	if m := t.job.Output.Manifest; m != nil {
		req := sign.Request{Method: "GET", Bucket: t.lay.bucket, Object: t.lay.manifest,
			Expires: t.manifestExpiry, Time: now.Truncate(time.Second)}
		signed, err := t.manifestSigner.Sign(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("sign the manifest URL: %w", err)
		}
		wait, err := r.beginAudit(ctx, t, req, signed, 0)
		if err == nil && wait != nil {
			err = wait(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("audit the manifest URL: %w", err)
		}
		d.Manifest = &schema.ManifestResult{URI: m.URI, Format: m.Format, URL: signed.URL, URLExpiresAt: signed.Expires}
	} else {
		d.ResultsTopic = t.job.Output.Topic
	}
	if errorsWritten {
		d.ErrorsURI = t.lay.uri(t.lay.errors)
	}
	return schema.NewJobDone(d)
}

// complete records done as this message's completion (or adopts the one
// already recorded) and returns it as an Output.
func (r *Runner) complete(ctx context.Context, t *task, done *schema.JobDone) ([]worker.Output, error) {
	rec := completion{Owner: t.job.JobID, Done: done}
	err := r.writeJSON(ctx, t, t.lay.complete(), rec)
	if errors.Is(err, ErrExists) {
		if _, err = r.readJSON(ctx, t, t.lay.complete(), &rec); err == nil && rec.Owner != t.job.JobID {
			return nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return doneOutput(t, rec.Done)
}

// announced returns the recorded completion if the job is complete: as an
// Output again if this message is the one that completed it (a
// redelivery), as nothing otherwise. done is false if it is not complete.
func (r *Runner) announced(ctx context.Context, t *task) (outs []worker.Output, done bool, err error) {
	var rec completion
	_, err = r.readJSON(ctx, t, t.lay.complete(), &rec)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case rec.Owner != t.job.JobID || rec.Done == nil:
		return nil, true, nil
	}
	outs, err = doneOutput(t, rec.Done)
	return outs, true, err
}

func doneOutput(t *task, d *schema.JobDone) ([]worker.Output, error) {
	data, err := d.Data()
	if err != nil {
		return nil, err
	}
	topic := t.job.NotifyTopic
	if topic == "" {
		topic = worker.TopicResults
	}
	return []worker.Output{{Topic: topic, Data: data, Attributes: d.Attributes()}}, nil
}

func (r *Runner) readPlan(ctx context.Context, t *task) (*plan, error) {
	var p plan
	if _, err := r.readJSON(ctx, t, t.lay.plan(), &p); err != nil {
		return nil, err
	}
	if p.JobID != t.rootID || p.Count < 1 || p.Count > schema.MaxShards || (p.Bounds != nil && len(p.Bounds) != p.Count) {
		return nil, failure.Permanent(schema.CodeInternal, fmt.Errorf("plan %s is not this job's or is damaged", t.lay.uri(t.lay.plan())))
	}
	return &p, nil
}

// writePlan records p, or returns the plan another delivery recorded first.
func (r *Runner) writePlan(ctx context.Context, t *task, p *plan) (*plan, error) {
	err := r.writeJSON(ctx, t, t.lay.plan(), p)
	if errors.Is(err, ErrExists) {
		return r.readPlan(ctx, t)
	}
	return p, err
}

// writeJSON creates a state object; it fails with ErrExists if it exists.
func (r *Runner) writeJSON(ctx context.Context, t *task, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return r.writeObject(ctx, t, name, data, true)
}

func (r *Runner) writeObject(ctx context.Context, t *task, name string, data []byte, ifAbsent bool) error {
	return r.write(ctx, t, name, data, WriteOptions{IfAbsent: ifAbsent})
}

// write writes a state object under o's preconditions.
func (r *Runner) write(ctx context.Context, t *task, name string, data []byte, o WriteOptions) error {
	wctx, abandon := context.WithCancel(ctx)
	defer abandon()
	o.ContentType, o.Metadata = contentTypeOf(name), map[string]string{MetaJobID: t.rootID}
	w := t.store.NewWriter(wctx, t.lay.bucket, name, o)
	if _, err := w.Write(data); err != nil {
		abandon()
		_ = w.Close() // fails: the write was abandoned
		return err
	}
	return w.Close()
}

func contentTypeOf(name string) string {
	if strings.HasSuffix(name, ".json") {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

func (r *Runner) readObject(ctx context.Context, t *task, name string) ([]byte, error) {
	rc, err := t.store.NewReader(ctx, t.lay.bucket, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxStateObject))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.lay.uri(name), err)
	}
	return data, nil
}

// readJSON reads a state object into v.
func (r *Runner) readJSON(ctx context.Context, t *task, name string, v any) ([]byte, error) {
	data, err := r.readObject(ctx, t, name)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, failure.Permanent(schema.CodeInternal, fmt.Errorf("%s is damaged: %w", t.lay.uri(name), err))
	}
	return data, nil
}
