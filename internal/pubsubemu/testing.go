package pubsubemu

import (
	"context"
	"os"
	"testing"
)

// RequireEnv names an environment variable that, when set, turns a missing
// emulator from a skipped test into a failed one (CI sets it).
const RequireEnv = "LINKISSUER_REQUIRE_PUBSUB_EMULATOR"

// RunTests is a TestMain body: it starts the emulator, points
// PUBSUB_EMULATOR_HOST at it, runs the tests and stops it. If the emulator
// cannot start, the tests still run and *unavailable says why; they call
// Need, which skips or fails.
func RunTests(m *testing.M, unavailable *error) int {
	emu, err := Start(context.Background(), nil)
	if err != nil {
		*unavailable = err
	} else {
		os.Setenv("PUBSUB_EMULATOR_HOST", emu.Host)
		defer emu.Stop()
	}
	return m.Run()
}

// Need skips t when the emulator is unavailable, or fails it when
// $LINKISSUER_REQUIRE_PUBSUB_EMULATOR is set.
func Need(t testing.TB, unavailable error) {
	t.Helper()
	if unavailable == nil {
		return
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("Pub/Sub emulator required ($%s) but unavailable: %v", RequireEnv, unavailable)
	}
	t.Skipf("Pub/Sub emulator unavailable: %v", unavailable)
}
