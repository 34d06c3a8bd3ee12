package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/worker"
)

// plan is how a root job was split. It is written once (does-not-exist
// precondition) before any shard is published, so that a redelivered root
// job republishes exactly the same shards, whatever the listing looks like
// by then.
type plan struct {
	JobID     string    `json:"job_id"`
	Count     int       `json:"count"`
	CreatedAt time.Time `json:"created_at"`
	// Bounds, for a prefix source, are the shards' start offsets: shard i
	// lists [Bounds[i], Bounds[i+1]), the last one to the end; Bounds[0]
	// is "" (from the first name).
	Bounds []string `json:"bounds,omitempty"`
	// SliceSize, for a list source, is the length of each shard's slice of
	// the list (the last may be shorter).
	SliceSize int `json:"slice_size,omitempty"`
}

// makePlan decides whether t's job is split, and how. It returns nil for a
// job of at most Split.Above objects. For a prefix source it lists the
// names once (names only, filtered by the glob), keeping one name per
// shard.
func (r *Runner) makePlan(ctx context.Context, t *task) (*plan, error) {
	s := r.o.Split
	p := &plan{JobID: t.rootID, CreatedAt: r.o.Now().UTC()}
	if objs := t.job.Source.Objects; objs != nil {
		if len(objs) <= s.Above {
			return nil, nil
		}
		p.SliceSize = max(s.ShardSize, (len(objs)+schema.MaxShards-1)/schema.MaxShards)
		p.Count = (len(objs) + p.SliceSize - 1) / p.SliceSize
		return p, nil
	}
	bounds, total, err := r.splitListing(ctx, t, s.ShardSize)
	if err != nil {
		return nil, err
	}
	if total <= int64(s.Above) || len(bounds) < 2 {
		return nil, nil
	}
	p.Bounds, p.Count = bounds, len(bounds)
	return p, nil
}

// splitListing lists t's source (names only) and returns shard start
// offsets about size objects apart, never between two generations of one
// name, and the number of objects listed. If more than schema.MaxShards
// shards would be needed, every other bound is dropped and size doubles.
func (r *Runner) splitListing(ctx context.Context, t *task, size int) (bounds []string, total int64, err error) {
	src := t.job.Source
	q := ListQuery{Bucket: src.Bucket, Prefix: src.Prefix, Versions: src.IncludeGenerations, MatchGlob: src.Match, NamesOnly: true}
	bounds = []string{""}
	inShard, prev := 0, ""
	for info, err := range t.backend.Source.List(ctx, q) {
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				err = failure.Permanent(schema.CodeInvalidField, fmt.Errorf("source bucket %s: %w", src.Bucket, err))
			}
			return nil, 0, err
		}
		if !t.glob.Match(info.Name) {
			continue
		}
		if inShard >= size && info.Name != prev {
			bounds = append(bounds, info.Name)
			inShard = 0
			if len(bounds) > schema.MaxShards {
				// Merge shards pairwise. If the bound just added goes,
				// the open shard also holds the one before it.
				if (len(bounds)-1)%2 != 0 {
					inShard += size
				}
				bounds, size = halve(bounds), size*2
			}
		}
		inShard++
		total++
		prev = info.Name
	}
	return bounds, total, nil
}

// halve keeps bounds 0, 2, 4, ...
func halve(bounds []string) []string {
	out := bounds[:0]
	for i := 0; i < len(bounds); i += 2 {
		out = append(out, bounds[i])
	}
	return out
}

// shardJobs builds the shard messages of t's job under p.
func shardJobs(t *task, p *plan) ([]*schema.Job, error) {
	out := make([]*schema.Job, 0, p.Count)
	objs := t.job.Source.Objects
	for i := range p.Count {
		var (
			start, end string
			slice      []schema.ObjectRef
		)
		if objs != nil {
			slice = objs[i*p.SliceSize : min(len(objs), (i+1)*p.SliceSize)]
		} else {
			start = p.Bounds[i]
			if i+1 < len(p.Bounds) {
				end = p.Bounds[i+1]
			}
		}
		s, err := t.job.NewShard(i, p.Count, start, end, slice)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// shardOutputs encodes the shards as messages to worker.TopicJobs.
func shardOutputs(t *task, p *plan) ([]worker.Output, error) {
	shards, err := shardJobs(t, p)
	if err != nil {
		return nil, err
	}
	outs := make([]worker.Output, len(shards))
	for i, s := range shards {
		data, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("encode shard %s: %w", s.JobID, err)
		}
		outs[i] = worker.Output{Topic: worker.TopicJobs, Data: data, Attributes: s.Attributes()}
	}
	return outs, nil
}
