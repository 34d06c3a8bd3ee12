package cli

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

// add counts signed objects and failed ones.
func add(p *progress, signed, failed int) {
	for range signed {
		p.Add(true)
	}
	for range failed {
		p.Add(false)
	}
}

func TestProgressLine(t *testing.T) {
	const label = "export gs://media/photos"
	for _, tc := range []struct {
		name           string
		elapsed        time.Duration
		signed, failed int
		total          int64 // 0: the count has not finished
		want           string
	}{
		{
			name: "nothing yet",
			want: label + ": 0 listed, 0 signed, 0 failed, 0/s",
		},
		{
			name:    "counting still",
			elapsed: 10 * time.Second, signed: 40, failed: 2,
			want: label + ": 42 listed, 40 signed, 2 failed, 4/s",
		},
		{
			name:    "counted",
			elapsed: 10 * time.Second, signed: 40, failed: 2, total: 210,
			// 4.2/s; 168 to go
			want: label + ": 210 listed, 40 signed, 2 failed, 4/s, 20%, ETA 40s",
		},
		{
			name:    "minutes to go",
			elapsed: 2 * time.Second, signed: 1000, total: 100000,
			// 500/s; 99,000 to go
			want: label + ": 100000 listed, 1000 signed, 0 failed, 500/s, 1%, ETA 3m18s",
		},
		{
			name:    "counted before anything was signed",
			elapsed: 0, total: 100,
			want: label + ": 100 listed, 0 signed, 0 failed, 0/s, 0%",
		},
		{
			name:    "objects appeared after the count",
			elapsed: 4 * time.Second, signed: 30, failed: 2, total: 25,
			want: label + ": 32 listed, 30 signed, 2 failed, 8/s, 100%, ETA 0s",
		},
		{
			name:    "all failed",
			elapsed: 3 * time.Second, failed: 3, total: 6,
			want: label + ": 6 listed, 0 signed, 3 failed, 1/s, 50%, ETA 3s",
		},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			clock := newFakeClock()
			var out bytes.Buffer
			p := newProgress(&out, label, "listed", clock.now)
			add(p, tc.signed, tc.failed)
			if tc.total > 0 {
				p.SetTotal(tc.total)
			}
			clock.advance(tc.elapsed)
			p.draw()
			if got := out.String(); got != "\r"+tc.want {
				t.Errorf("drew %q\nwant %q", got, "\r"+tc.want)
			}
		})
	}
}

// A redraw returns to the start of the line and blanks what a longer
// line before it left (here the rate falls from 1000/s to 9/s in a stall).
func TestProgressRedrawBlanksTheTail(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	p := newProgress(&out, "export", "listed", clock.now)
	add(p, 1000, 0)
	clock.advance(time.Second)
	p.draw()
	first := "export: 1000 listed, 1000 signed, 0 failed, 1000/s"
	if out.String() != "\r"+first {
		t.Fatalf("first line %q, want %q", out.String(), "\r"+first)
	}
	out.Reset()
	clock.advance(110 * time.Second)
	p.draw()
	second := "export: 1000 listed, 1000 signed, 0 failed, 9/s"
	want := "\r" + second + strings.Repeat(" ", len(first)-len(second))
	if out.String() != want {
		t.Errorf("redraw %q\nwant %q", out.String(), want)
	}
	// A line as long or longer needs no blanks.
	out.Reset()
	add(p, 0, 1)
	p.draw()
	if want := "\rexport: 1001 listed, 1000 signed, 1 failed, 9/s"; out.String() != want {
		t.Errorf("redraw %q\nwant %q", out.String(), want)
	}
}

// syncWriter records writes and reports each on a channel.
type syncWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes chan string
}

func (w *syncWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(b)
	w.mu.Unlock()
	w.writes <- string(b)
	return len(b), nil
}

// The drawing goroutine draws at each tick, and Stop draws the final line
// and ends it; counting goes on from other goroutines meanwhile.
func TestProgressRun(t *testing.T) {
	clock := newFakeClock()
	w := &syncWriter{writes: make(chan string, 16)}
	p := newProgress(w, "export gs://media", "listed", clock.now)
	ticks := make(chan time.Time)
	stopped := make(chan struct{})
	p.run(ticks, func() { close(stopped) })

	var adders sync.WaitGroup
	for range 4 {
		adders.Add(1)
		go func() {
			defer adders.Done()
			add(p, 25, 5)
		}()
	}
	adders.Wait()
	clock.advance(4 * time.Second)
	ticks <- clock.now()
	if got := <-w.writes; got != "\rexport gs://media: 120 listed, 100 signed, 20 failed, 30/s" {
		t.Errorf("tick drew %q", got)
	}
	p.SetTotal(240)
	p.Stop()
	p.Stop() // a second Stop is harmless
	select {
	case <-stopped:
	default:
		t.Error("Stop returned before the drawing goroutine ended")
	}
	if got := <-w.writes; got != "\rexport gs://media: 240 listed, 100 signed, 20 failed, 30/s, 50%, ETA 4s" {
		t.Errorf("Stop drew %q", got)
	}
	if got := <-w.writes; got != "\n" {
		t.Errorf("Stop ended the line with %q", got)
	}
	select {
	case extra := <-w.writes:
		t.Errorf("drawn after Stop: %q", extra)
	default:
	}
}

// Off a terminal nothing is drawn, and the counts are still kept.
func TestProgressOffTerminal(t *testing.T) {
	var out bytes.Buffer
	p := startProgress(&out, "sign", "read")
	add(p, 3, 1)
	p.SetTotal(4)
	p.Stop()
	if out.Len() != 0 {
		t.Errorf("drew %q on a buffer", out.String())
	}
	if p.signed.Load() != 3 || p.failed.Load() != 1 {
		t.Errorf("counted %d signed and %d failed, want 3 and 1", p.signed.Load(), p.failed.Load())
	}
}

// screen replays what a terminal shows for out: "\r" returns to the start of
// the line and later characters overwrite earlier ones; "\n" ends it.
func screen(out string) []string {
	var lines []string
	var cur []rune
	col := 0
	for _, r := range out {
		switch r {
		case '\r':
			col = 0
		case '\n':
			lines = append(lines, strings.TrimRight(string(cur), " "))
			cur, col = nil, 0
		default:
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
		}
	}
	if len(cur) > 0 {
		lines = append(lines, strings.TrimRight(string(cur), " "))
	}
	return lines
}

// Error lines written while the counter is drawn get a line of their own,
// and the counter is drawn again below them (sign's bulk errors were glued
// onto the counter: "...351/slinkissuer sign: gs://b/bad-mid: ...").
func TestProgressErrorLinesOwnTheirLine(t *testing.T) {
	clock := newFakeClock()
	w := &syncWriter{writes: make(chan string, 64)}
	p := newProgress(w, "sign", "read", clock.now)
	ticks := make(chan time.Time)
	p.run(ticks, nil)
	add(p, 351, 0)
	clock.advance(time.Second)
	ticks <- clock.now()
	<-w.writes
	const msg = "linkissuer sign: gs://b/bad-mid: invalid object: not valid UTF-8"
	p.Printf("%s\n", msg)
	add(p, 0, 1)
	p.Printf("%s\n", msg)
	p.Stop()

	got := screen(w.buf.String())
	want := []string{
		msg,
		msg,
		"sign: 352 read, 351 signed, 1 failed, 352/s",
	}
	if !slices.Equal(got, want) {
		t.Errorf("the terminal shows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Off a terminal the messages are written as they are.
	var plain bytes.Buffer
	q := startProgress(&plain, "sign", "read")
	q.Printf("%s\n", msg)
	q.Stop()
	if plain.String() != msg+"\n" {
		t.Errorf("off a terminal: %q", plain.String())
	}
}
