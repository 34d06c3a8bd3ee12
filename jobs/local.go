package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/linkissuer/linkissuer/schema"
)

// Run runs a root job whole, here and now, without Pub/Sub (the export
// command): it writes the manifest and, if any object failed, the errors
// file straight to their final names, keeps no state objects, and returns
// the completion message it would publish.
func (r *Runner) Run(ctx context.Context, job *schema.Job) (*schema.JobDone, error) {
	if err := job.Validate(); err != nil {
		return nil, err
	}
	if job.Shard != nil {
		return nil, errors.New("jobs: Run takes a whole job, not a shard")
	}
	if job.Output.Manifest == nil {
		return nil, errors.New("jobs: Run writes manifests; topic output needs the worker")
	}
	t, err := r.prepare(ctx, job)
	if err != nil {
		return nil, err
	}
	res, err := r.runPiece(ctx, t, pieceOf(job), r.wholeOut(t))
	if err != nil {
		return nil, err
	}
	return r.jobDone(ctx, t, res.Counts, res.Errors, 1, res.StartedAt)
}

// Count lists src's objects (names only, filtered by its glob) and
// returns how many a job would consider; for a list source, the list's
// length. The export command runs it beside the job to show an ETA.
func Count(ctx context.Context, l Lister, src *schema.JobSource) (int64, error) {
	if src.Objects != nil {
		return int64(len(src.Objects)), nil
	}
	g, err := CompileGlob(src.Match)
	if err != nil {
		return 0, err
	}
	var n int64
	q := ListQuery{Bucket: src.Bucket, Prefix: src.Prefix, Versions: src.IncludeGenerations, MatchGlob: src.Match, NamesOnly: true}
	for info, err := range l.List(ctx, q) {
		if err != nil {
			return n, fmt.Errorf("count: %w", err)
		}
		if g.Match(info.Name) {
			n++
		}
	}
	return n, nil
}
