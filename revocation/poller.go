package revocation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of PollerOptions.
const (
	DefaultInterval = 10 * time.Second
	DefaultMaxAge   = time.Minute
)

// ErrUnavailable is what Revoked's and Ready's errors match when the list
// cannot be trusted: never read, or last read longer ago than MaxAge.
var ErrUnavailable = errors.New("revocation: list unavailable")

// Source is what a Poller reads: a *Store.
type Source interface {
	Generation(ctx context.Context) (int64, error)
	Read(ctx context.Context) (*List, int64, error)
}

// PollerOptions configure a Poller.
type PollerOptions struct {
	// Interval between reads (default DefaultInterval).
	Interval time.Duration
	// MaxAge is the staleness bound: once the last good read is older, the
	// Poller fails closed (default DefaultMaxAge; at least 2 Intervals).
	MaxAge time.Duration
	// Timeout bounds one read (default Interval).
	Timeout time.Duration
	Logger  *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Poller keeps the current Set of a Source; it implements durable.Revoker.
type Poller struct {
	src Source
	o   PollerOptions

	mu      sync.RWMutex
	set     *Set
	gen     int64
	checked time.Time // last good read (or unchanged generation)
	lastErr error
}

// NewPoller validates o and returns a Poller that has read nothing yet
// (and so refuses every lookup until Poll or Run succeeds).
func NewPoller(src Source, o PollerOptions) (*Poller, error) {
	if src == nil {
		return nil, errors.New("revocation: no source")
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxAge == 0 {
		o.MaxAge = max(DefaultMaxAge, 2*o.Interval)
	}
	if o.Timeout == 0 {
		o.Timeout = o.Interval
	}
	switch {
	case o.Interval < 10*time.Millisecond:
		return nil, fmt.Errorf("revocation: poll interval %s under 10ms", o.Interval)
	case o.MaxAge < 2*o.Interval:
		return nil, fmt.Errorf("revocation: staleness bound %s under two poll intervals (%s)", o.MaxAge, 2*o.Interval)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Poller{src: src, o: o}, nil
}

// Interval is the poll interval.
func (p *Poller) Interval() time.Duration { return p.o.Interval }

// MaxAge is the staleness bound.
func (p *Poller) MaxAge() time.Duration { return p.o.MaxAge }

// Poll reads the list once: only its generation when unchanged since the
// last read, else the whole list. A failed read keeps the previous Set
// (until MaxAge passes) and is returned.
func (p *Poller) Poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	start := p.o.Now()
	err := p.poll(ctx, start)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	if err == nil {
		p.checked = start
	}
	return err
}

func (p *Poller) poll(ctx context.Context, start time.Time) error {
	p.mu.RLock()
	have, gen := p.set != nil, p.gen
	p.mu.RUnlock()
	if have {
		g, err := p.src.Generation(ctx)
		if err != nil {
			return err
		}
		if g == gen {
			return nil
		}
	}
	l, g, err := p.src.Read(ctx)
	if err != nil {
		return err
	}
	set := Compile(l)
	p.mu.Lock()
	p.set, p.gen = set, g
	p.mu.Unlock()
	p.o.Logger.Info("revocation list loaded", zap.Int64("generation", g), zap.Int("entries", set.Len()),
		zap.Duration("read", p.o.Now().Sub(start)))
	return nil
}

// Run polls now and then every Interval until ctx is done; failures are
// logged (Ready and Revoked report them once the list is stale).
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.o.Logger.Warn("revocation list not read", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Ready is nil while the list is fresh, else an error matching
// ErrUnavailable that says why.
func (p *Poller) Ready() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.readyLocked(p.o.Now())
}

func (p *Poller) readyLocked(now time.Time) error {
	switch {
	case p.set == nil && p.lastErr != nil:
		return fmt.Errorf("%w: never read: %w", ErrUnavailable, p.lastErr)
	case p.set == nil:
		return fmt.Errorf("%w: not read yet", ErrUnavailable)
	case now.Sub(p.checked) > p.o.MaxAge:
		if p.lastErr != nil {
			return fmt.Errorf("%w: last read %s ago (bound %s): %w", ErrUnavailable, now.Sub(p.checked).Round(time.Second), p.o.MaxAge, p.lastErr)
		}
		return fmt.Errorf("%w: last read %s ago (bound %s)", ErrUnavailable, now.Sub(p.checked).Round(time.Second), p.o.MaxAge)
	}
	return nil
}

// Revoked returns the reason a durable link is revoked ("" if it is not),
// or an error matching ErrUnavailable when the list cannot be trusted. It
// answers from memory.
func (p *Poller) Revoked(_ context.Context, tokenID, bucket, object string, issuedAt time.Time) (string, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.readyLocked(p.o.Now()); err != nil {
		return "", err
	}
	return p.set.Revoked(tokenID, bucket, object, issuedAt), nil
}
