package linkcache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/iam"
)

// counting counts the signatures the inner URLSigner makes.
type counting struct {
	inner *sign.URLSigner
	calls atomic.Int64
	gate  chan struct{} // if set, each Sign waits for it
}

func (c *counting) Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error) {
	c.calls.Add(1)
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.inner.Sign(ctx, r)
}

func hmacURLSigner(t *testing.T) *sign.URLSigner {
	t.Helper()
	hs, err := sign.NewHMACSigner("GOOG1EXAMPLE", "secret")
	if err != nil {
		t.Fatal(err)
	}
	u, err := sign.New(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// keylessURLSigner signs through IAM signBlob on the emulator (12 h cap).
func keylessURLSigner(t *testing.T) (*sign.URLSigner, *emulator.Server) {
	t.Helper()
	srv := iamtest.Start(t, emulator.Options{})
	blob, err := iam.NewSigner(context.Background(), iam.Options{Email: srv.Email(), Endpoint: srv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	u, err := sign.New(blob, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u, srv
}

var base = time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)

func req(object string, at time.Time) sign.Request {
	return sign.Request{Method: "GET", Bucket: "cache-bucket", Object: object, Expires: time.Hour, Time: at,
		Query: []sign.Param{{Name: "response-content-disposition", Value: "attachment"}}}
}

func TestSameRequestInOneWindowIsOneURL(t *testing.T) {
	u, srv := keylessURLSigner(t)
	c, err := New(u, u.MaxExpiry(), &Options{Window: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := c.Sign(ctx, req("a.txt", base.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{2 * time.Second, time.Minute, 9*time.Minute + 59*time.Second} {
		again, err := c.Sign(ctx, req("a.txt", base.Add(at)))
		if err != nil {
			t.Fatal(err)
		}
		if again.URL != first.URL || !again.Expires.Equal(first.Expires) {
			t.Errorf("at +%v: a different URL in the same window", at)
		}
	}
	if n := srv.Stats().Signed; n != 1 {
		t.Errorf("%d signBlob calls for one request repeated in a window, want 1", n)
	}
	// The next window, another object, another lifetime, another query:
	// each a new URL.
	differ := []sign.Request{
		req("a.txt", base.Add(10*time.Minute)),
		req("b.txt", base.Add(time.Second)),
		func() sign.Request { r := req("a.txt", base.Add(time.Second)); r.Expires = 2 * time.Hour; return r }(),
		func() sign.Request { r := req("a.txt", base.Add(time.Second)); r.Query = nil; return r }(),
		func() sign.Request { r := req("a.txt", base.Add(time.Second)); r.Method = "HEAD"; return r }(),
	}
	seen := map[string]bool{first.URL: true}
	for i, r := range differ {
		l, err := c.Sign(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if seen[l.URL] {
			t.Errorf("request %d (%+v) got a URL already issued for another request", i, r)
		}
		seen[l.URL] = true
	}
	if st := c.Stats(); st.Hits != 3 || st.Misses != 6 {
		t.Errorf("stats %+v, want 3 hits and 6 misses", st)
	}
}

func TestLifetimesStayBetweenTheAskAndTheCap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cap     time.Duration
		window  time.Duration
		expires time.Duration
		cached  bool
	}{
		{"keyless, an hour", sign.KeylessExpiry, 10 * time.Minute, time.Hour, true},
		{"keyless, just under the cap", sign.KeylessExpiry, 10 * time.Minute, sign.KeylessExpiry - 3*time.Minute, true},
		{"keyless, at the cap", sign.KeylessExpiry, 10 * time.Minute, sign.KeylessExpiry, false},
		{"keyless, half a second under", sign.KeylessExpiry, 10 * time.Minute, sign.KeylessExpiry - 500*time.Millisecond, false},
		{"keys, a day", sign.MaxExpiry, time.Hour, 24 * time.Hour, true},
		{"keys, at the cap", sign.MaxExpiry, time.Hour, sign.MaxExpiry, false},
		{"one second, small window", sign.MaxExpiry, time.Second, time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for off := time.Duration(0); off < tc.window; off += max(time.Second, tc.window/97) {
				r := req("o", base.Add(off))
				r.Expires = tc.expires
				q, ok := Quantize(r, tc.window, tc.cap)
				if ok != tc.cached {
					t.Fatalf("at +%v: cached=%v, want %v", off, ok, tc.cached)
				}
				expiry := q.Time.Add(q.Expires)
				if remaining := expiry.Sub(r.Time); remaining < r.Expires {
					t.Errorf("at +%v: %v left, asked %v", off, remaining, r.Expires)
				}
				if q.Expires > tc.cap {
					t.Errorf("at +%v: lifetime %v above the cap %v", off, q.Expires, tc.cap)
				}
				if q.Time.After(r.Time) {
					t.Errorf("at +%v: signing time %v after the request's %v", off, q.Time, r.Time)
				}
			}
		})
	}
}

func TestCappedLifetimeSignsThroughTheRealSigner(t *testing.T) {
	// Keyless at the 12 h cap: the URLSigner would refuse a stretched
	// lifetime, so the cache must pass the request through as asked.
	u, srv := keylessURLSigner(t)
	c, err := New(u, u.MaxExpiry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := req("o", base)
	r.Expires = u.MaxExpiry()
	for range 2 {
		l, err := c.Sign(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Expires.Sub(r.Time); got != u.MaxExpiry() {
			t.Errorf("lifetime %v, want the cap %v", got, u.MaxExpiry())
		}
	}
	if st := c.Stats(); st.Uncached != 2 || srv.Stats().Signed != 2 {
		t.Errorf("stats %+v, %d signBlob calls: want both uncached and signed", st, srv.Stats().Signed)
	}
}

func TestEvictionIsBounded(t *testing.T) {
	inner := &counting{inner: hmacURLSigner(t)}
	c, err := New(inner, sign.MaxExpiry, &Options{Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10 {
		if _, err := c.Sign(ctx, req(fmt.Sprintf("o%d", i), base)); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.Entries != 3 || st.Evicted != 7 {
		t.Errorf("stats %+v, want 3 entries and 7 evicted", st)
	}
	// The most recent three are kept; the first was evicted.
	before := inner.calls.Load()
	for _, o := range []string{"o9", "o8", "o7"} {
		c.Sign(ctx, req(o, base))
	}
	if n := inner.calls.Load() - before; n != 0 {
		t.Errorf("%d signatures for the three most recent, want 0", n)
	}
	c.Sign(ctx, req("o0", base))
	if n := inner.calls.Load() - before; n != 1 {
		t.Errorf("%d signatures for an evicted link, want 1", n)
	}
}

func TestConcurrentMissesSignOnce(t *testing.T) {
	inner := &counting{inner: hmacURLSigner(t), gate: make(chan struct{})}
	c, err := New(inner, sign.MaxExpiry, nil)
	if err != nil {
		t.Fatal(err)
	}
	const callers = 20
	urls := make([]string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			l, err := c.Sign(context.Background(), req("hot", base.Add(time.Duration(i)*time.Second)))
			if err != nil {
				t.Error(err)
				return
			}
			urls[i] = l.URL
		})
	}
	for c.Stats().Misses+c.Stats().Shared == 0 && inner.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(inner.gate)
	wg.Wait()
	if n := inner.calls.Load(); n != 1 {
		t.Errorf("%d signatures for %d concurrent identical requests, want 1", n, callers)
	}
	for i, u := range urls {
		if u != urls[0] {
			t.Errorf("caller %d got a different URL", i)
		}
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	u, srv := keylessURLSigner(t)
	c, err := New(u, u.MaxExpiry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Sign(ctx, req("o", base)); err == nil {
		t.Fatal("a cancelled sign returned no error")
	}
	if _, err := c.Sign(context.Background(), req("o", base)); err != nil {
		t.Fatalf("after a failed sign: %v", err)
	}
	if n := srv.Stats().Signed; n != 1 {
		t.Errorf("%d signatures, want 1", n)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    *Options
		ok   bool
	}{
		{"nil", nil, true},
		{"defaults", &Options{}, true},
		{"window", &Options{Window: time.Minute, Size: 10}, true},
		{"negative window", &Options{Window: -time.Minute}, false},
		{"sub-second window", &Options{Window: time.Millisecond}, false},
		{"negative size", &Options{Size: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
