package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/schema"
)

// Defaults of the finish lease.
const (
	// DefaultFinishLease is Options.FinishLease's default: longer than a
	// compose of every part takes, shorter than a handler timeout.
	DefaultFinishLease = 45 * time.Second
	// leasePoll is how often a delivery waiting for another's lease looks
	// for the completion.
	leasePoll = time.Second
)

// CodeManifestExists: the job's manifest URI holds another job's manifest,
// which is never replaced.
const CodeManifestExists schema.ReasonCode = "manifest_exists"

// lease is the finish lock's content: the shard message that finishes the
// job, until when. Locks written before leases hold the owner as plain
// text; they read as expired.
type lease struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

func parseLease(data []byte) lease {
	var l lease
	if json.Unmarshal(data, &l) != nil || l.Owner == "" {
		return lease{Owner: string(data)}
	}
	return l
}

// acquireFinish decides whether this shard message finishes the job. The
// first to create the lock holds it until the lease in it expires; a
// redelivery of the holder renews it; any other delivery takes an expired
// lease over by replacing the lock under a generation precondition, so
// that of several contenders exactly one wins. A delivery that finds a live
// lease of another waits for the completion or the expiry while ctx lasts,
// and then returns a transient error: the message stays undelivered rather
// than acked, so that the job still has a message to finish it if the
// holder's own is dead-lettered (its compose kept failing).
//
// On a store that is not Versioned the lock has no takeover: the first
// holder keeps it, and others return (false, nil), as before leases.
func (r *Runner) acquireFinish(ctx context.Context, t *task, log *zap.Logger) (bool, error) {
	v, versioned := t.store.(Versioned)
	name := t.lay.lock()
	for {
		mine := lease{Owner: t.job.JobID, Expires: r.o.Now().Add(r.o.FinishLease).UTC()}
		err := r.writeJSON(ctx, t, name, mine)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrExists) {
			return false, err
		}
		// The version first, then the content: if the content is newer
		// than the version, the replace below fails its precondition.
		var ver ObjectVersion
		if versioned {
			if ver, err = v.Version(ctx, t.lay.bucket, name); errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return false, err
			}
		}
		data, err := r.readObject(ctx, t, name)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return false, err
		}
		held := parseLease(data)
		if !versioned {
			return held.Owner == t.job.JobID, nil
		}
		now := r.o.Now()
		if held.Owner == t.job.JobID || !now.Before(held.Expires) {
			err := r.replaceJSON(ctx, t, name, mine, ver.Generation)
			if errors.Is(err, ErrExists) {
				continue // another delivery renewed or took it first
			} else if err != nil {
				return false, err
			}
			if held.Owner != t.job.JobID {
				log.Warn("finish lease taken over", zap.String("from", held.Owner), zap.Time("expired", held.Expires))
			}
			return true, nil
		}
		if done, err := r.waitLease(ctx, t, held.Expires.Sub(now)); done || err != nil {
			return false, err
		}
	}
}

// waitLease waits up to d for the job to be announced. It returns true if
// it was, false when d has passed, and a transient error when ctx ends
// first.
func (r *Runner) waitLease(ctx context.Context, t *task, d time.Duration) (bool, error) {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(min(leasePoll, max(d, time.Millisecond)))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("job %s: another delivery holds the finish lease: %w", t.rootID, ctx.Err())
		case <-end.C:
			return false, nil
		case <-tick.C:
			if _, done, err := r.announced(ctx, t); done || err != nil {
				return done, err
			}
		}
	}
}

// replaceJSON replaces a state object only while it is generation gen.
func (r *Runner) replaceJSON(ctx context.Context, t *task, name string, v any, gen int64) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return r.write(ctx, t, name, data, WriteOptions{IfGeneration: gen})
}

// manifestGuard returns the precondition under which this job writes its
// manifest: that it is absent, or, when an earlier delivery of this job
// wrote it but did not announce it, that it is still that generation. A
// manifest of another job is never replaced: the job is dead-lettered with
// CodeManifestExists. On a store that is not Versioned there is no guard.
func (r *Runner) manifestGuard(ctx context.Context, t *task) (WriteOptions, error) {
	v, ok := t.store.(Versioned)
	if !ok || t.lay.manifest == "" {
		return WriteOptions{}, nil
	}
	ver, err := v.Version(ctx, t.lay.bucket, t.lay.manifest)
	switch {
	case errors.Is(err, ErrNotFound):
		return WriteOptions{IfAbsent: true}, nil
	case err != nil:
		return WriteOptions{}, err
	case ver.Metadata[MetaJobID] != t.rootID:
		owner := "no job"
		if id := ver.Metadata[MetaJobID]; id != "" {
			owner = "job " + id
		}
		return WriteOptions{}, failure.Permanent(CodeManifestExists,
			fmt.Errorf("job %s: manifest %s already exists (written by %s); a manifest is never replaced: name another output.manifest.uri", t.rootID, t.lay.uri(t.lay.manifest), owner))
	}
	return WriteOptions{IfGeneration: ver.Generation}, nil
}

// guardFailed turns a manifest write that lost its precondition into the
// permanent refusal (another job wrote the manifest meanwhile) or leaves
// it transient (another delivery of this job did).
func (r *Runner) guardFailed(ctx context.Context, t *task, err error) error {
	if !errors.Is(err, ErrExists) {
		return err
	}
	if _, gerr := r.manifestGuard(ctx, t); gerr != nil {
		return gerr
	}
	return fmt.Errorf("job %s: the manifest changed while it was written; trying again: %w", t.rootID, err)
}
