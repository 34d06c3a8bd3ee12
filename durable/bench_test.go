package durable

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/iam"
)

// iamStack is a durable-link server signing keylessly through the IAM
// Credentials emulator with `linkissuer emulate iam`'s default latency
// (50ms ± 10ms per signBlob).
func iamStack(b *testing.B) *stack {
	b.Helper()
	pk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	emu, err := emulator.Start("127.0.0.1:0", &emulator.Options{Key: pk, Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = emu.Close(context.Background()) })
	gcs := newGCS(b)
	keyless, err := iam.NewSigner(context.Background(), iam.Options{Email: emu.Email(), Endpoint: emu.Endpoint()})
	if err != nil {
		b.Fatal(err)
	}
	urls, err := sign.New(keyless, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: gcs.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	return newStack(b, testKeys(b, "k1"), urls, gcs)
}

func (s *stack) token(b *testing.B) string {
	b.Helper()
	now := time.Now()
	tok, err := s.durable.o.Keys.Mint(Claims{ID: NewID(), Bucket: testBucket, Object: "reports/q3.pdf",
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()})
	if err != nil {
		b.Fatal(err)
	}
	return "/l/" + tok
}

// reportLatency reports the p50 and p99 of d in milliseconds.
func reportLatency(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	ms := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))]) / 1e6 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkClick measures GET /l/TOKEN to its redirect: warm (the token's
// signed URL is cached) and cold (every click a new token, so a fresh
// signBlob on the emulator). Run: go test -run '^$' -bench Click
// -benchtime 200x ./durable
func BenchmarkClick(b *testing.B) {
	s := iamStack(b)
	click := func(path string) time.Duration {
		start := time.Now()
		if status, _ := s.click(b, path); status != http.StatusFound {
			b.Fatalf("click: %d", status)
		}
		return time.Since(start)
	}
	b.Run("warm", func(b *testing.B) {
		path := s.token(b)
		click(path)
		d := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			d = append(d, click(path))
		}
		reportLatency(b, d)
	})
	b.Run("cold", func(b *testing.B) {
		paths := make([]string, b.N)
		for i := range paths {
			paths[i] = s.token(b)
		}
		d := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for _, p := range paths {
			d = append(d, click(p))
		}
		reportLatency(b, d)
	})
}

// BenchmarkClickBurst: each op is a burst of 50 concurrent clicks on a new
// token (a scanner and a person); it reports signatures per click.
func BenchmarkClickBurst(b *testing.B) {
	s := iamStack(b)
	const burst = 50
	before := s.signer.n.Load()
	for range b.N {
		path := s.token(b)
		var wg sync.WaitGroup
		for range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, _ := s.click(b, path); status != http.StatusFound {
					b.Errorf("click: %d", status)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(s.signer.n.Load()-before)/float64(b.N*burst), "signatures/click")
}
