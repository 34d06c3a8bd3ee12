// Package slowtest marks the tests that take minutes on a small machine:
// scenarios with several worker processes on the real Pub/Sub emulator, a
// deep compose tree, the demo against the real emulator. They run when
// $LINKISSUER_SLOW_TESTS is set (.ci/run sets it, so CI runs every one of
// them) and are skipped otherwise, and always with -short, so that the
// README's test command stays within minutes for a newcomer.
package slowtest

import (
	"os"
	"testing"
)

// Env is the variable that turns the slow tests on.
const Env = "LINKISSUER_SLOW_TESTS"

// Enabled reports whether slow tests run: $LINKISSUER_SLOW_TESTS is set and
// -short is not.
func Enabled() bool { return !testing.Short() && os.Getenv(Env) != "" }

// Require skips t unless slow tests run.
func Require(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skipf("slow scenario: runs with $%s=1 (as in .ci/run), never with -short", Env)
	}
}
