// Package linkcache issues one signed URL for all identical requests made
// within a window of time: a sign.URLSigner-shaped wrapper that quantizes
// the signing time.
//
// What it guarantees:
//   - Requests equal in method, bucket, object (a generation pinned in the
//     query included), headers, query and asked lifetime, made in the same
//     window, get byte-identical URLs: X-Goog-Date is the request's time
//     floored to the window, and the lifetime is the asked one plus the
//     window. One signature (one signBlob call, keyless) serves them all;
//     identical URLs are also cacheable by browsers and CDNs.
//   - A link's remaining lifetime when handed out is never below what was
//     asked, and its whole lifetime never above the signer's cap (7 days
//     with keys, 12 hours keyless): near the cap the window shrinks to
//     cap - asked, and with less than a second of room the request is
//     signed as asked, uncached.
//   - Concurrent misses for one key are signed once (the others wait for
//     that signature, each under its own context); errors are never
//     cached.
//   - Memory is bounded: at most Options.Size links are kept, the least
//     recently used evicted first.
//
// A cached URL is a bearer credential held in memory for at most its
// window; the cache never logs or exports one. Callers that must record
// every issuance (an audit trail) record above the cache: each Sign call
// is an issuance, hit or miss.
package linkcache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/linkissuer/linkissuer/sign"
)

// Defaults for Options.
const (
	DefaultWindow = 10 * time.Minute
	DefaultSize   = 100_000
)

// Signer is what the cache wraps: *sign.URLSigner.
type Signer interface {
	Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error)
}

// Options configure a Cache. A nil *Options, or a zero field, means the
// default.
type Options struct {
	// Window is how long one URL serves identical requests (default 10
	// minutes). Links live up to Window longer than asked.
	Window time.Duration
	// Size bounds the links kept (default 100,000: about 60 MB at
	// ~600 bytes a link).
	Size int
}

// Validate reports impossible options. It does not modify o.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	if o.Window < 0 {
		return &sign.InputError{Field: "link cache window", Reason: "must not be negative"}
	}
	if o.Window != 0 && o.Window < time.Second {
		return &sign.InputError{Field: "link cache window", Reason: "must be at least a second (X-Goog-Date has seconds)"}
	}
	if o.Size < 0 {
		return &sign.InputError{Field: "link cache size", Reason: "must not be negative"}
	}
	return nil
}

// Stats counts Sign calls by outcome.
type Stats struct {
	Hits     uint64 // answered from the cache
	Misses   uint64 // signed by the inner signer
	Shared   uint64 // waited for a concurrent miss of the same key
	Uncached uint64 // too close to the lifetime cap to quantize
	Evicted  uint64
	Entries  int
}

// Cache is a Signer that quantizes signing times and keeps the links it
// signed. It is safe for concurrent use.
type Cache struct {
	inner     Signer
	maxExpiry time.Duration
	window    time.Duration
	size      int

	mu      sync.Mutex
	lru     *list.List // of *entry, most recent first
	entries map[string]*list.Element
	flights singleflight.Group

	hits, misses, shared, uncached, evicted atomic.Uint64
}

type entry struct {
	key  string
	link *sign.SignedURL
}

// New wraps inner, whose links may live at most maxExpiry (the
// URLSigner's MaxExpiry()).
func New(inner Signer, maxExpiry time.Duration, opts *Options) (*Cache, error) {
	if inner == nil {
		return nil, &sign.InputError{Field: "signer", Reason: "no signer to wrap"}
	}
	if maxExpiry <= 0 {
		return nil, &sign.InputError{Field: "link cache", Reason: "the lifetime cap must be positive"}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{inner: inner, maxExpiry: maxExpiry, window: DefaultWindow, size: DefaultSize,
		lru: list.New(), entries: map[string]*list.Element{}}
	if opts != nil && opts.Window > 0 {
		c.window = opts.Window
	}
	if opts != nil && opts.Size > 0 {
		c.size = opts.Size
	}
	return c, nil
}

// Quantize returns the request the cache signs for r: its time floored to
// the window and its lifetime stretched to cover the window, capped at
// maxExpiry. ok is false when the cap leaves less than a second of window
// (then r is signed as it is).
func Quantize(r sign.Request, window, maxExpiry time.Duration) (q sign.Request, ok bool) {
	w := min(window, maxExpiry-r.Expires)
	if w < time.Second {
		return r, false
	}
	w = w.Truncate(time.Second)
	q = r
	q.Time = r.Time.UTC().Truncate(w)
	q.Expires = r.Expires + w
	return q, true
}

// Sign implements Signer.
func (c *Cache) Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error) {
	q, ok := Quantize(r, c.window, c.maxExpiry)
	if !ok {
		c.uncached.Add(1)
		return c.inner.Sign(ctx, r)
	}
	key := cacheKey(q)
	if link := c.get(key); link != nil {
		c.hits.Add(1)
		return link, nil
	}
	for {
		led, filled := false, false
		ch := c.flights.DoChan(key, func() (any, error) {
			led = true
			// A flight that ended between our miss above and this one
			// has put its link: signing again would cost a second call.
			if link := c.get(key); link != nil {
				filled = true
				return link, nil
			}
			link, err := c.inner.Sign(ctx, q)
			if err != nil {
				if ctx.Err() != nil {
					return nil, &abandoned{err}
				}
				return nil, err
			}
			c.put(key, link)
			return link, nil
		})
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("link cache: %w", ctx.Err())
		case res := <-ch:
			var ab *abandoned
			switch {
			case res.Err == nil && filled:
				c.hits.Add(1)
				return clone(res.Val.(*sign.SignedURL)), nil
			case res.Err == nil && led:
				c.misses.Add(1)
				return clone(res.Val.(*sign.SignedURL)), nil
			case res.Err == nil:
				c.shared.Add(1)
				return clone(res.Val.(*sign.SignedURL)), nil
			case errors.As(res.Err, &ab) && !led && ctx.Err() == nil:
				continue // the caller that signed left; sign it ourselves
			case errors.As(res.Err, &ab):
				return nil, ab.err
			}
			return nil, res.Err
		}
	}
}

// abandoned marks a shared signature stopped because its caller left.
type abandoned struct{ err error }

func (a *abandoned) Error() string { return a.err.Error() }
func (a *abandoned) Unwrap() error { return a.err }

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Shared: c.shared.Load(),
		Uncached: c.uncached.Load(), Evicted: c.evicted.Load(), Entries: n}
}

func (c *Cache) get(key string) *sign.SignedURL {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return clone(el.Value.(*entry).link)
}

func (c *Cache) put(key string, link *sign.SignedURL) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(&entry{key: key, link: clone(link)})
	for c.lru.Len() > c.size {
		old := c.lru.Remove(c.lru.Back()).(*entry)
		delete(c.entries, old.key)
		c.evicted.Add(1)
	}
}

// clone copies a link so that callers never share its Headers.
func clone(l *sign.SignedURL) *sign.SignedURL {
	c := *l
	c.Headers = slices.Clone(l.Headers)
	return &c
}

// cacheKey is every input of the signature, length-prefixed so that no two
// requests share a key.
func cacheKey(r sign.Request) string {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	field(r.Method)
	field(r.Bucket)
	field(r.Object)
	b.WriteString(strconv.Itoa(len(r.Headers)))
	for _, h := range r.Headers {
		field(h.Name)
		field(h.Value)
	}
	b.WriteString(strconv.Itoa(len(r.Query)))
	for _, p := range r.Query {
		field(p.Name)
		field(p.Value)
	}
	field(strconv.FormatInt(int64(r.Expires), 10))
	field(strconv.FormatInt(r.Time.Unix(), 10))
	return b.String()
}
