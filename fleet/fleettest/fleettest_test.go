package fleettest

import (
	"testing"

	"github.com/linkissuer/linkissuer/fleet"
)

func TestMemoryConformance(t *testing.T) {
	Conformance(t, func(*testing.T) fleet.Store { return &Memory{} })
}
