package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// Reason codes of error rows only jobs writes (defined in package failure).
const (
	// CodeObjectNotFound: an explicitly listed object does not exist.
	CodeObjectNotFound = failure.CodeObjectNotFound
	// CodeSignFailed: signing failed with an error nothing classified.
	CodeSignFailed = failure.CodeSignFailed
)

// Metadata keys set on manifests, parts and errors files.
const (
	MetaJobID  = "linkissuer-job-id"
	MetaSchema = "linkissuer-schema"
)

// piece is what one message runs: a whole job (index 0 of 1) or a shard.
type piece struct {
	index, count int
	start, end   string
	objects      []schema.ObjectRef // list source
}

func pieceOf(job *schema.Job) piece {
	p := piece{count: 1, objects: job.Source.Objects}
	if s := job.Shard; s != nil {
		p.index, p.count, p.start, p.end = s.Index, s.Count, s.StartOffset, s.EndOffset
	}
	return p
}

// pieceOut says where a piece's rows go. rows is empty for topic output;
// a header is written first only when the object is a whole file rather
// than a part to be composed after a header object.
type pieceOut struct {
	rows, errors         string
	rowHeader, errHeader bool
	// guard is the rows object's precondition (see manifestGuard).
	guard WriteOptions
}

// pieceResult is what a piece did.
type pieceResult struct {
	Counts schema.JobCounts `json:"counts"`
	// Errors reports that the piece wrote error rows.
	Errors     bool      `json:"errors"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// item is one object to sign: listed (info set) or named in a list (ref
// set, described by Stat when processed).
type item struct {
	info ObjectInfo
	ref  *schema.ObjectRef
}

// result is what became of one item: a row (and link), an error row, or a
// failure that stops the piece.
type result struct {
	row    *schema.ManifestRow
	link   *schema.Link
	errRow *schema.ErrorRow
	fatal  error
	// audit waits for the row's audit record (nil: auditing is off).
	audit func(context.Context) error
}

// runPiece lists (or stats), checks, signs and writes the rows of p. On
// success every object it wrote appears whole; on failure none does.
func (r *Runner) runPiece(ctx context.Context, t *task, p piece, out pieceOut) (pieceResult, error) {
	res := pieceResult{StartedAt: r.o.Now().UTC()}
	// Writers live on wctx: cancelling it abandons their uploads, so that
	// a failed piece leaves no part behind.
	wctx, abandon := context.WithCancel(ctx)
	defer abandon()
	w, err := r.newPieceWriter(wctx, t, out)
	if err != nil {
		return res, err
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	var (
		mu    sync.Mutex
		fatal error
		g     errgroup.Group
	)
	fail := func(err error) {
		if fatal == nil {
			fatal = err
			stop(err)
		}
	}
	emit := func(out result) {
		mu.Lock()
		defer mu.Unlock()
		if fatal != nil {
			return
		}
		if out.fatal != nil {
			fail(out.fatal)
			return
		}
		if err := w.write(runCtx, out, &res.Counts); err != nil {
			fail(err)
			return
		}
		if r.o.OnObject != nil {
			r.o.OnObject(out.errRow == nil)
		}
	}
	g.SetLimit(r.o.Concurrency)
	for it, err := range r.items(runCtx, t, p) {
		if err == nil {
			err = runCtx.Err()
		}
		if err != nil {
			mu.Lock()
			fail(err)
			mu.Unlock()
			break
		}
		mu.Lock()
		res.Counts.Listed++
		mu.Unlock()
		g.Go(func() error {
			emit(r.process(runCtx, t, it))
			return nil
		})
	}
	g.Wait()
	if fatal != nil {
		abandon()
		w.discard()
		return res, fatal
	}
	if err := w.close(ctx); err != nil {
		return res, err
	}
	res.Errors = w.errRows > 0
	res.FinishedAt = r.o.Now().UTC()
	return res, nil
}

// items yields p's objects: a listing of its key range, filtered by the
// glob, or its explicit list.
func (r *Runner) items(ctx context.Context, t *task, p piece) iter.Seq2[item, error] {
	return func(yield func(item, error) bool) {
		if p.objects != nil {
			for i := range p.objects {
				if !yield(item{ref: &p.objects[i]}, nil) {
					return
				}
			}
			return
		}
		src := t.job.Source
		q := ListQuery{Bucket: src.Bucket, Prefix: src.Prefix, StartOffset: p.start, EndOffset: p.end,
			Versions: src.IncludeGenerations, MatchGlob: src.Match}
		for info, err := range t.backend.Source.List(ctx, q) {
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					err = failure.Permanent(schema.CodeInvalidField, fmt.Errorf("source bucket %s: %w", src.Bucket, err))
				}
				yield(item{}, err)
				return
			}
			if !t.glob.Match(info.Name) {
				continue
			}
			if !yield(item{info: info}, nil) {
				return
			}
		}
	}
}

// process describes (for a list), checks and signs one object.
func (r *Runner) process(ctx context.Context, t *task, it item) result {
	info := it.info
	pin := int64(0)
	if it.ref != nil {
		var err error
		info, err = t.backend.Source.Stat(ctx, t.job.Source.Bucket, it.ref.Name, it.ref.Generation)
		switch {
		case errors.Is(err, ErrNotFound):
			return errorRow(it.ref.Name, it.ref.Generation, CodeObjectNotFound, "object not found")
		case err != nil:
			return result{fatal: err}
		}
		pin = it.ref.Generation
	} else if t.job.Source.IncludeGenerations {
		pin = info.Generation
	}
	grant, err := r.o.Policy.Check(policy.Request{
		Bucket: t.job.Source.Bucket, Object: info.Name, Method: t.job.Method,
		ContentType: info.ContentType, Expires: t.expires,
	})
	if err != nil {
		if jobRefusal(err) {
			return result{fatal: fmt.Errorf("job %s: %w", t.job.JobID, err)}
		}
		code, fatal := objectFailure(ctx, info.Name, err)
		if fatal != nil {
			return result{fatal: fatal}
		}
		return errorRow(info.Name, info.Generation, code, err.Error())
	}
	query := mergeQuery(grant.Query, t.query)
	if pin > 0 {
		query = append(query, sign.Param{Name: "generation", Value: strconv.FormatInt(pin, 10)})
	}
	req := sign.Request{
		Method: grant.Method, Bucket: t.job.Source.Bucket, Object: info.Name,
		Query: query, Expires: grant.Expires, Time: r.o.Now().UTC().Truncate(time.Second),
	}
	signed, err := r.sign(ctx, t, req)
	if err != nil {
		code, fatal := objectFailure(ctx, info.Name, err)
		if fatal != nil {
			return result{fatal: fatal}
		}
		return errorRow(info.Name, info.Generation, code, err.Error())
	}
	wait, err := r.beginAudit(ctx, t, req, signed, info.Generation)
	if err != nil {
		return result{fatal: err}
	}
	row := &schema.ManifestRow{
		Object: info.Name, Generation: info.Generation, Size: info.Size, ContentType: info.ContentType,
		URL: signed.URL, ExpiresAt: signed.Expires.UTC().Truncate(time.Second),
	}
	if t.job.Output.Topic == "" {
		return result{row: row, audit: wait}
	}
	link, err := schema.NewLink(req, signed, schema.LinkObject{Generation: info.Generation, Size: info.Size, ContentType: info.ContentType},
		schema.LinkSource{JobID: t.rootID})
	if err != nil {
		return errorRow(info.Name, info.Generation, CodeSignFailed, err.Error())
	}
	return result{row: row, link: link, audit: wait}
}

// sign signs req, trying again up to Options.SignAttempts times, a pause
// apart, while the signer fails transiently (see objectFailure): one object
// the engine gave up on in a burst of errors does not make the whole piece
// be redone; an outage that outlasts the attempts does.
func (r *Runner) sign(ctx context.Context, t *task, req sign.Request) (*sign.SignedURL, error) {
	for attempt := 1; ; attempt++ {
		signed, err := t.backend.Signer.Sign(ctx, req)
		if err == nil {
			return signed, nil
		}
		if _, fatal := objectFailure(ctx, req.Object, err); fatal == nil || attempt >= r.o.SignAttempts || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(attempt) * r.o.SignPause):
		}
	}
}

func errorRow(name string, gen int64, code schema.ReasonCode, reason string) result {
	return result{errRow: &schema.ErrorRow{Object: name, Generation: gen, Reason: reason, ReasonCode: code}}
}

// pieceWriter writes a piece's rows (or links) and its error rows, opening
// the errors object only at the first error row.
type pieceWriter struct {
	r     *Runner
	t     *task
	wctx  context.Context
	out   pieceOut
	rowsW io.WriteCloser
	rows  *schema.RowWriter
	errsW io.WriteCloser
	errs  *schema.RowWriter
	links []worker.Output
	// audits wait for the audit records of rows not yet released.
	audits []func(context.Context) error
	// errRows counts error rows written.
	errRows int64
}

func (r *Runner) newPieceWriter(wctx context.Context, t *task, out pieceOut) (*pieceWriter, error) {
	w := &pieceWriter{r: r, t: t, wctx: wctx, out: out}
	if out.rows != "" {
		format := t.job.Output.Manifest.Format
		o := r.writeOptions(t, format, schema.ManifestRowV1)
		o.IfAbsent, o.IfGeneration = out.guard.IfAbsent, out.guard.IfGeneration
		w.rowsW = t.store.NewWriter(wctx, t.lay.bucket, out.rows, o)
		var header []string
		if out.rowHeader {
			header = schema.ManifestCSVHeader
		}
		var err error
		if w.rows, err = schema.NewRowWriter(w.rowsW, format, header); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// format is the errors file's format: the manifest's, or JSONL for topic
// output.
func (t *task) format() schema.ManifestFormat {
	if m := t.job.Output.Manifest; m != nil {
		return m.Format
	}
	return schema.FormatJSONL
}

func (r *Runner) writeOptions(t *task, format schema.ManifestFormat, rowSchema string) WriteOptions {
	return WriteOptions{ContentType: format.ContentType(), ChunkSize: r.o.ChunkSize,
		Metadata: map[string]string{MetaJobID: t.rootID, MetaSchema: rowSchema}}
}

// write records one result; counts is updated under the caller's lock.
func (w *pieceWriter) write(ctx context.Context, res result, counts *schema.JobCounts) error {
	if e := res.errRow; e != nil {
		if w.errs == nil {
			if err := w.openErrors(); err != nil {
				return err
			}
		}
		if err := w.errs.WriteError(e); err != nil {
			return err
		}
		w.errRows++
		if e.ReasonCode == schema.CodePolicyRefused || e.ReasonCode == schema.CodeInvalidObjectName {
			counts.Skipped++
		} else {
			counts.Failed++
		}
		return nil
	}
	counts.Signed++
	if res.audit != nil {
		w.audits = append(w.audits, res.audit)
		if len(w.audits) >= auditBatch {
			if err := w.awaitAudits(ctx); err != nil {
				return err
			}
		}
	}
	if w.rows != nil {
		return w.rows.WriteRow(res.row)
	}
	out, err := worker.LinkOutput(res.link)
	if err != nil {
		return err
	}
	out.Topic = w.t.job.Output.Topic
	w.links = append(w.links, out)
	if len(w.links) >= w.r.o.LinkBatch {
		return w.flushLinks(ctx)
	}
	return nil
}

func (w *pieceWriter) flushLinks(ctx context.Context) error {
	if len(w.links) == 0 {
		return nil
	}
	if err := w.awaitAudits(ctx); err != nil {
		return err
	}
	if err := w.r.o.Publisher.Publish(ctx, w.links...); err != nil {
		return fmt.Errorf("publish links: %w", err)
	}
	clear(w.links)
	w.links = w.links[:0]
	return nil
}

func (w *pieceWriter) openErrors() error {
	format := w.t.format()
	w.errsW = w.t.store.NewWriter(w.wctx, w.t.lay.bucket, w.out.errors, w.r.writeOptions(w.t, format, schema.ManifestErrorRowV1))
	var header []string
	if w.out.errHeader {
		header = schema.ErrorCSVHeader
	}
	var err error
	w.errs, err = schema.NewRowWriter(w.errsW, format, header)
	return err
}

// discard ends abandoned uploads (their context is already cancelled, so
// nothing is committed).
func (w *pieceWriter) discard() {
	for _, c := range []io.WriteCloser{w.rowsW, w.errsW} {
		if c != nil {
			_ = c.Close() // fails: the upload was abandoned
		}
	}
}

// close flushes and commits: the errors object first, then the rows, so
// that a part never exists without its errors.
func (w *pieceWriter) close(ctx context.Context) error {
	if w.errs != nil {
		if err := w.errs.Flush(); err != nil {
			return err
		}
		if err := w.errsW.Close(); err != nil {
			return err
		}
	}
	if err := w.flushLinks(ctx); err != nil {
		return err
	}
	if err := w.awaitAudits(ctx); err != nil {
		return err
	}
	if w.rows != nil {
		if err := w.rows.Flush(); err != nil {
			return err
		}
		return w.rowsW.Close()
	}
	return nil
}
