package cli

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
)

func startBenchEmulator(t *testing.T, quota float64) *emulator.Server {
	t.Helper()
	return iamtest.Start(t, emulator.Options{Quota: quota, Burst: max(1, int(quota/10)), Latency: 5 * time.Millisecond})
}

func TestBenchRefusesWithoutYes(t *testing.T) {
	srv := startBenchEmulator(t, 100)
	env, _, errOut := emulateEnv(nil)
	code := Bench(context.Background(), env, []string{"--service-account", srv.Email(), "--iam-endpoint", srv.Endpoint()})
	if code != ExitUsage || !strings.Contains(errOut.String(), "--yes") {
		t.Errorf("exit %d, stderr %q: want a usage error asking for --yes", code, errOut.String())
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("%d signBlob calls made without --yes, want 0", n)
	}
}

var ceilingLine = regexp.MustCompile(`LINKISSUER_SIGN_RATE_CEILING=(\d+)`)

func TestBenchFindsTheQuotaWithinItsBudget(t *testing.T) {
	// A quota low enough that even a loaded machine running the race
	// detector offers more than it admits (at 100/s, such a machine served
	// the emulator slower than its quota and no step was refused).
	const quota = 5
	srv := startBenchEmulator(t, quota)
	env, out, errOut := emulateEnv(nil)
	code := Bench(context.Background(), env, []string{"--service-account", srv.Email(), "--iam-endpoint", srv.Endpoint(),
		"--yes", "--max-calls", "1000", "--start-rate", "4", "--max-time", "2m"})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	t.Log(out.String())
	// Steps of 4, 8, 16/s...: the 8/s step meets a 5/s quota.
	if !strings.Contains(out.String(), "429 point: about") {
		t.Fatalf("no 429 point found:\n%s", out.String())
	}
	m := ceilingLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no ceiling advised:\n%s", out.String())
	}
	// The ceiling sits under the quota: the refused step admitted at most
	// a second of quota plus the bucket's 1, and the advice keeps 10% off.
	c, _ := strconv.Atoi(m[1])
	if c <= 0 || c > quota {
		t.Errorf("advised ceiling %d, want in (0, %d]", c, quota)
	}
	if want := fmt.Sprintf("LINKISSUER_SIGN_QUOTA=%d ", 60*c); !strings.Contains(out.String(), want) {
		t.Errorf("no %q (the ceiling per minute) advised:\n%s", want, out.String())
	}
	if st := srv.Stats(); st.Requests > 1000 || st.Throttled == 0 {
		t.Errorf("emulator saw %d calls (%d refused): want at most --max-calls and some refused", st.Requests, st.Throttled)
	}
}

func TestBenchStopsAtItsCallBudget(t *testing.T) {
	srv := startBenchEmulator(t, 0) // no quota: the point is never reached
	env, out, errOut := emulateEnv(nil)
	code := Bench(context.Background(), env, []string{"--service-account", srv.Email(), "--iam-endpoint", srv.Endpoint(),
		"--yes", "--max-calls", "200", "--start-rate", "25"})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "not reached") || !strings.Contains(out.String(), "--max-calls ran out") {
		t.Errorf("output does not say the budget ran out:\n%s", out.String())
	}
	if n := srv.Stats().Requests; n > 200 {
		t.Errorf("%d calls, want at most 200", n)
	}
}

func TestBenchStopsAtItsTimeBudget(t *testing.T) {
	srv := startBenchEmulator(t, 0) // no quota: only the time stops it
	env, out, errOut := emulateEnv(nil)
	code := Bench(context.Background(), env, []string{"--service-account", srv.Email(), "--iam-endpoint", srv.Endpoint(),
		"--yes", "--max-calls", "1000000", "--start-rate", "25", "--max-time", "3s"})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "not reached") || !strings.Contains(out.String(), "the time ran out") {
		t.Errorf("output does not say the time ran out:\n%s", out.String())
	}
	// Steps of 25, 50, 100, 200... calls a second, one second each with a
	// second's pause: three seconds hold the latency calls and two steps at
	// most.
	if n := srv.Stats().Requests; n == 0 || n > 10+25+50 {
		t.Errorf("%d calls in a 3 s budget, want some and at most the first two steps'", n)
	}
}

func TestBenchAdvice(t *testing.T) {
	ms := func(d ...int) []time.Duration {
		var out []time.Duration
		for _, v := range d {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		name string
		r    benchResult
		want benchAdvice
	}{
		{
			name: "429 point found: ceiling 10% under it, in flight by Little's law at p99 with half again",
			r:    benchResult{latency: ms(50, 50, 50, 100), limit: 1000, maxTried: 1600},
			want: benchAdvice{ceiling: 900, quota: 54000, inFlight: 150, replicas: 3},
		},
		{
			name: "no 429 point: no ceiling, in flight for the highest rate tried",
			r:    benchResult{latency: ms(50, 50, 50, 50), maxTried: 400},
			want: benchAdvice{ceiling: 0, inFlight: 30, replicas: 1},
		},
		{
			name: "slow calls, low quota: one replica, at least one in flight",
			r:    benchResult{latency: ms(1), limit: 10, maxTried: 20},
			want: benchAdvice{ceiling: 9, quota: 540, inFlight: 1, replicas: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := advise(tt.r); got != tt.want {
				t.Errorf("advise = %+v, want %+v", got, tt.want)
			}
		})
	}
}
