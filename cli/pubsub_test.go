package cli

import (
	"context"
	"sync"
	"testing"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/internal/pubsubtest"
)

// The tests of commands that publish (sign --audit-topic, submit) use
// Google's Pub/Sub emulator: one for the package, started by the first test
// that needs it and stopped by TestMain.
var (
	pubsubOnce sync.Once
	pubsubEmu  *pubsubemu.Emulator
	pubsubErr  error
)

// pubsubStack points PUBSUB_EMULATOR_HOST at the package's emulator for t
// and creates t's topics in project "proj", each with a subscription
// "ID-sub"; it skips or fails t when the emulator is unavailable.
func pubsubStack(t *testing.T, topics ...string) *pubsubtest.Stack {
	t.Helper()
	pubsubOnce.Do(func() { pubsubEmu, pubsubErr = pubsubemu.Start(context.Background(), nil) })
	if pubsubErr == nil {
		t.Setenv("PUBSUB_EMULATOR_HOST", pubsubEmu.Host)
	}
	s := pubsubtest.New(t, "proj", pubsubErr, topics...)
	for _, name := range topics {
		s.Subscribe(pubsubemu.Subscription{ID: s.Sub(name), Topic: s.IDs[name]})
	}
	return s
}

// stopPubSub stops the package's emulator, if a test started it.
func stopPubSub() {
	if pubsubEmu != nil {
		pubsubEmu.Stop()
	}
}
