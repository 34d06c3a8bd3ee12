// Package iamtest starts the IAM Credentials emulator (emulator/iam) for a
// test: on a loopback port, closed when the test ends, signing with an
// RSA-2048 key that the whole test binary shares unless the test gives its
// own (generating the key is the slow part of starting an emulator).
package iamtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
)

// Key is the RSA-2048 key shared by this test binary: the emulators' key
// when Options.Key is nil, and for any test that needs a key but not a
// particular one.
var Key = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// Start starts an emulator with o (Key when o.Key is nil) and closes it,
// within 5 s, when the test ends.
func Start(t testing.TB, o emulator.Options) *emulator.Server {
	t.Helper()
	if o.Key == nil {
		o.Key = Key()
	}
	s, err := emulator.Start("127.0.0.1:0", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("closing the IAM emulator: %v", err)
		}
	})
	return s
}
