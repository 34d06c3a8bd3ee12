// Command plot draws the issued rate over time of N replicas sharing one
// quota, against the quota line, as SVG: one panel per quota shape and
// build, one line per replica count (the sum over its processes). It
// reads the CSV that `go run ./loadtest/keyless -replicas ... -trace FILE`
// writes (build,shape,processes,process,second,issued).
//
//	go run ./loadtest/plot -in trace.csv -quota 200 -out docs/quota.svg
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

type series struct {
	build, shape string
	n            int
	perSec       []int
}

func main() {
	in := flag.String("in", "", "trace CSV (default stdin)")
	out := flag.String("out", "", "SVG file (default stdout)")
	quota := flag.Float64("quota", 1000, "the quota, calls per second (the dashed line)")
	flag.Parse()
	r := io.Reader(os.Stdin)
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		r = f
	}
	ss, err := read(r)
	if err != nil {
		fatal(err)
	}
	svg := draw(ss, *quota)
	if *out == "" {
		fmt.Print(svg)
		return
	}
	if err := os.WriteFile(*out, []byte(svg), 0o644); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}

// read sums the trace's processes into one series per (build, shape, N).
func read(r io.Reader) ([]*series, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "build,shape,processes,process,second,issued" {
		return nil, fmt.Errorf("not a replicas trace (want the header build,shape,processes,process,second,issued)")
	}
	byKey := map[string]*series{}
	var order []*series
	for i, row := range rows[1:] {
		n, err1 := strconv.Atoi(row[2])
		sec, err2 := strconv.Atoi(row[4])
		k, err3 := strconv.Atoi(row[5])
		if err1 != nil || err2 != nil || err3 != nil || sec < 0 || sec > 1_000_000 {
			return nil, fmt.Errorf("line %d: bad numbers in %q", i+2, row)
		}
		key := row[0] + "\x00" + row[1] + "\x00" + row[2]
		s := byKey[key]
		if s == nil {
			s = &series{build: row[0], shape: row[1], n: n}
			byKey[key] = s
			order = append(order, s)
		}
		for len(s.perSec) <= sec {
			s.perSec = append(s.perSec, 0)
		}
		s.perSec[sec] += k
	}
	return order, nil
}

var colors = map[int]string{1: "#1f77b4", 3: "#ff7f0e", 10: "#2ca02c"}

// draw lays the panels out in a column: one per (build, shape).
func draw(ss []*series, quota float64) string {
	type panelKey struct{ build, shape string }
	var panels []panelKey
	for _, s := range ss {
		if k := (panelKey{s.build, s.shape}); !slices.Contains(panels, k) {
			panels = append(panels, k)
		}
	}
	const (
		w, ph, left, top, gap = 760.0, 220.0, 60.0, 30.0, 50.0
		plotW                 = w - left - 120
	)
	maxRate := quota * 1.5
	for _, s := range ss {
		for _, v := range s.perSec {
			maxRate = max(maxRate, float64(v))
		}
	}
	h := top + float64(len(panels))*(ph+gap)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, p := range panels {
		maxSec := 1 // each panel spans its own run
		for _, s := range ss {
			if s.build == p.build && s.shape == p.shape {
				maxSec = max(maxSec, len(s.perSec))
			}
		}
		y0 := top + float64(i)*(ph+gap)
		x := func(sec int) float64 { return left + plotW*float64(sec)/float64(maxSec) }
		y := func(rate float64) float64 { return y0 + ph - ph*rate/maxRate }
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="13">%s, %s: URLs issued per second, all processes</text>`+"\n", left, y0-8, esc(p.build), esc(p.shape))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, ph)
		for _, frac := range []float64{0, 0.5, 1, 1.5} {
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`+"\n", left-4, y(frac*quota)+4, frac*quota)
		}
		for sec := 0; sec <= maxSec; sec += max(1, maxSec/10) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%ds</text>`+"\n", x(sec), y0+ph+14, sec)
		}
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="red" stroke-dasharray="6,4"/>`+"\n", left, y(quota), left+plotW, y(quota))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" fill="red">quota %g/s</text>`+"\n", left+plotW+6, y(quota)+4, quota)
		row := 0
		for _, s := range ss {
			if s.build != p.build || s.shape != p.shape {
				continue
			}
			color := colors[s.n]
			if color == "" {
				color = "#555"
			}
			var pts []string
			for sec, v := range s.perSec {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(sec)+plotW/float64(maxSec)/2, y(float64(v))))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%d process%s</text>`+"\n", left+plotW+6, y0+14+float64(row)*14, color, s.n, plural(s.n))
			row++
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
