package pubsubemu

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestStartAndStop(t *testing.T) {
	ctx := context.Background()
	e, err := Start(ctx, nil)
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", e.Host, time.Second)
	if err != nil {
		t.Fatalf("emulator not listening on %s: %v", e.Host, err)
	}
	conn.Close()
	e.Stop()
	if _, err := net.DialTimeout("tcp", e.Host, time.Second); err == nil {
		t.Errorf("emulator still listening on %s after Stop", e.Host)
	}
}
