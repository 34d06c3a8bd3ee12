package cli

import (
	"os"
	"testing"

	"github.com/linkissuer/linkissuer/internal/testbin"
)

// TestMain removes the linkissuer binary the demo tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}
