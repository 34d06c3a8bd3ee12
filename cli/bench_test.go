package cli

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
)

func startBenchEmulator(t *testing.T, quota float64) *emulator.Server {
	t.Helper()
	srv, err := emulator.Start("127.0.0.1:0", &emulator.Options{Quota: quota, Burst: max(1, int(quota/10)), Latency: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv
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
	const quota = 100
	srv := startBenchEmulator(t, quota)
	env, out, errOut := emulateEnv(nil)
	code := Bench(context.Background(), env, []string{"--service-account", srv.Email(), "--iam-endpoint", srv.Endpoint(),
		"--yes", "--max-calls", "1000", "--start-rate", "25", "--max-time", "2m"})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	t.Log(out.String())
	// Steps of 25, 50, 100, 200/s: the 200/s step meets a 100/s quota.
	if !strings.Contains(out.String(), "429 point: about") {
		t.Fatalf("no 429 point found:\n%s", out.String())
	}
	m := ceilingLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no ceiling advised:\n%s", out.String())
	}
	// The ceiling sits under the quota: the refused step admitted at most
	// a second of quota plus the bucket's 10, and the advice keeps 10% off.
	if c, _ := strconv.Atoi(m[1]); c <= 0 || c > quota {
		t.Errorf("advised ceiling %d, want in (0, %d]", c, quota)
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
