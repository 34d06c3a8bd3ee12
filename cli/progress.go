package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal (progress is drawn only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressInterval is how often the line is redrawn.
const progressInterval = 250 * time.Millisecond

// progress draws a one-line counter on a terminal, redrawn four times a
// second:
//
//	export gs://media/photos: 1200 listed, 830 signed, 2 failed, 415/s
//	export gs://media/photos: 5000 listed, 830 signed, 2 failed, 415/s, 16%, ETA 10s
//
// Every object is counted when it is accounted for (Add): signed, or
// failed (an error row: refused by policy, missing, or failing to sign).
// Listed is what is known to exist: the objects accounted for so far, and,
// once a names-only count has finished (SetTotal), that count (or more, if
// objects appeared since). The rate is objects accounted for per second;
// the percentage and ETA appear only with the count. Start it with
// startProgress; Stop draws the last line and ends it. Other lines for the
// same stream (errors) go through Printf, which never lets them share the
// progress line.
type progress struct {
	w     io.Writer
	label string
	// found names the first count: "listed" for an export, "read" for
	// sign's batch of names.
	found string
	now   func() time.Time
	start time.Time

	total  atomic.Int64 // 0 until the count has finished
	signed atomic.Int64
	failed atomic.Int64

	// mu serialises writes to w: the drawing goroutine's and Printf's.
	mu sync.Mutex
	// drawing is set while run's goroutine owns a line on w.
	drawing bool
	// width is the length of the last line drawn, so that a shorter one
	// blanks its tail.
	width int

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// newProgress returns a progress that counts from now() and draws nothing
// until run.
func newProgress(w io.Writer, label, found string, now func() time.Time) *progress {
	return &progress{w: w, label: label, found: found, now: now, start: now(), stop: make(chan struct{})}
}

// startProgress starts drawing on w if w is a terminal; otherwise the
// returned progress only counts.
func startProgress(w io.Writer, label, found string) *progress {
	p := newProgress(w, label, found, time.Now)
	if isTerminal(w) {
		t := time.NewTicker(progressInterval)
		p.run(t.C, t.Stop)
	}
	return p
}

// run draws at every tick until Stop, then draws once more and ends the
// line; done, if set, is called when it returns.
func (p *progress) run(ticks <-chan time.Time, done func()) {
	p.mu.Lock()
	p.drawing = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if done != nil {
			defer done()
		}
		for {
			select {
			case <-p.stop:
				p.mu.Lock()
				p.drawLocked()
				fmt.Fprintln(p.w)
				p.drawing, p.width = false, 0
				p.mu.Unlock()
				return
			case <-ticks:
				p.draw()
			}
		}
	}()
}

// SetTotal records the names-only count, enabling the percentage and ETA.
func (p *progress) SetTotal(n int64) { p.total.Store(n) }

// Add counts one object accounted for: signed (ok) or failed.
func (p *progress) Add(ok bool) {
	if ok {
		p.signed.Add(1)
	} else {
		p.failed.Add(1)
	}
}

// Stop ends the drawing goroutine, if any, and waits for it. It may be
// called more than once.
func (p *progress) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// line is the progress line as it stands.
func (p *progress) line() string {
	signed, failed, total := p.signed.Load(), p.failed.Load(), p.total.Load()
	done := signed + failed
	listed := max(done, total)
	rate := 0.0
	if elapsed := p.now().Sub(p.start).Seconds(); elapsed > 0 {
		rate = float64(done) / elapsed
	}
	line := fmt.Sprintf("%s: %d %s, %d signed, %d failed, %.0f/s", p.label, listed, p.found, signed, failed, rate)
	if total > 0 {
		line += fmt.Sprintf(", %d%%", done*100/listed)
		if rate > 0 {
			eta := time.Duration(float64(listed-done) / rate * float64(time.Second))
			line += fmt.Sprintf(", ETA %s", eta.Round(time.Second))
		}
	}
	return line
}

// Printf writes a line of its own (an error, say) to the progress's stream.
// While the progress line is drawn, it blanks that line first, writes the
// message in its place and draws the progress line again below it, so that
// a message is never glued onto the counter. format should end in "\n".
func (p *progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.drawing {
		fmt.Fprintf(p.w, format, args...)
		return
	}
	if p.width > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.width)+"\r")
		p.width = 0
	}
	fmt.Fprintf(p.w, format, args...)
	p.drawLocked()
}

// draw redraws the line in place. Only run's goroutine (or a test) calls
// it.
func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawLocked()
}

// drawLocked is draw with p.mu held.
func (p *progress) drawLocked() {
	line := p.line()
	pad := max(0, p.width-len(line))
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+strings.Repeat(" ", pad))
}
