package cli

import (
	"os"
	"testing"

	"github.com/linkissuer/linkissuer/internal/testbin"
)

// TestMain removes the linkissuer binary the demo tests built and stops
// the Pub/Sub emulator, if tests started them.
func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	stopPubSub()
	os.Exit(code)
}
