package engine

import (
	"context"
	"iter"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/linkissuer/linkissuer/sign"
)

// URLSigner is what SignAll needs: *sign.URLSigner, normally built on the
// Engine itself (sign.New(engine, opts)).
type URLSigner interface {
	Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error)
}

// SignAll signs every request reqs yields through u and calls emit once
// for each, with the request's position in reqs (from 0) and either its
// URL or its error.
//
// It keeps 2×MaxInFlight requests in progress, so the engine's slots stay
// busy while some requests wait out a backoff, and reads reqs only as fast
// as requests finish: memory stays bounded whatever the input's size.
// emit calls never overlap (emit needs no locking) and come in completion
// order, not input order. Per-request errors go to emit, never to the
// return value.
//
// SignAll returns nil once every request has been emitted. If ctx ends
// first, it stops reading reqs, waits for the requests in progress (which
// fail promptly with ctx's error and are emitted) and returns ctx's error.
// A reqs that can block should itself honour ctx.
func (e *Engine) SignAll(ctx context.Context, u URLSigner, reqs iter.Seq[sign.Request], emit func(i int, url *sign.SignedURL, err error)) error {
	var (
		g       errgroup.Group
		emitMu  sync.Mutex
		i       int
		stopped error
	)
	g.SetLimit(2 * e.opts.MaxInFlight)
	for r := range reqs {
		if err := ctx.Err(); err != nil {
			stopped = err
			break
		}
		idx := i
		i++
		g.Go(func() error {
			url, err := u.Sign(ctx, r)
			emitMu.Lock()
			defer emitMu.Unlock()
			emit(idx, url, err)
			return nil
		})
	}
	g.Wait()
	return stopped
}
