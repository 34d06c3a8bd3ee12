package cli

import (
	"fmt"
	"io"
	"os"
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

// progress draws a one-line counter (done, failed, rate, and ETA when the
// total is known) on a terminal, redrawn four times a second. Start it with
// startProgress; Stop erases nothing and ends the line.
type progress struct {
	w      io.Writer
	label  string
	total  atomic.Int64 // 0 when unknown
	done   atomic.Int64
	failed atomic.Int64
	start  time.Time

	stop chan struct{}
	wg   sync.WaitGroup
}

// startProgress starts drawing on w if w is a terminal; otherwise the
// returned progress only counts.
func startProgress(w io.Writer, label string) *progress {
	p := &progress{w: w, label: label, start: time.Now(), stop: make(chan struct{})}
	if !isTerminal(w) {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				p.draw()
				fmt.Fprintln(p.w)
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

// SetTotal records the expected count, enabling the ETA.
func (p *progress) SetTotal(n int64) { p.total.Store(n) }

// Add counts one finished item.
func (p *progress) Add(ok bool) {
	p.done.Add(1)
	if !ok {
		p.failed.Add(1)
	}
}

// Stop ends the drawing goroutine, if any, and waits for it.
func (p *progress) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func (p *progress) draw() {
	done, failed, total := p.done.Load(), p.failed.Load(), p.total.Load()
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	line := fmt.Sprintf("\r%s: %d done, %d failed, %.0f/s", p.label, done, failed, rate)
	if total > 0 && rate > 0 {
		eta := time.Duration(float64(total-done)/rate) * time.Second
		line += fmt.Sprintf(", %d%%, ETA %s", done*100/total, eta.Round(time.Second))
	}
	fmt.Fprint(p.w, line+"   ")
}
