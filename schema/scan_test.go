package schema

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// hostile builds a storage#object payload of about size bytes meant to make
// an input check slow: array nesting to depth (inside "metadata"-like keys),
// then as many strings with invalid UTF-8 or lone surrogates as fit, each
// under its own long key so that a path is rebuilt for each.
func hostile(size, depth int) []byte {
	var b strings.Builder
	b.WriteString(`{"kind":"storage#object","bucket":"b","generation":"1","x":`)
	b.WriteString(strings.Repeat("[", depth))
	key := strings.Repeat("k", 200)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if i%2 == 0 {
			b.WriteString("{\"" + key + "\":\"\xff\xfe\"}")
		} else {
			b.WriteString(`"\ud800x"`)
		}
	}
	b.WriteString(strings.Repeat("]", depth))
	b.WriteString(`,"name":"a/b.txt"}`)
	return []byte(b.String())
}

// TestScanIsLinear counts the scanner's steps on hostile inputs of growing
// size (the sizes at which the old invalid-UTF-8 locator took 9, 31, 170
// and 580 ms, and 1 MB): the steps per input byte must not grow with the
// size. No clock is read.
func TestScanIsLinear(t *testing.T) {
	names := []string{"name", "x.name"}
	var perByte []float64
	for _, size := range []int{12 << 10, 24 << 10, 48 << 10, 96 << 10, 1 << 20} {
		data := hostile(size, MaxJSONDepth-2)
		s := &scanner{data: data}
		for _, n := range names {
			s.names = append(s.names, strings.Split(n, "."))
		}
		if err := s.run(context.Background()); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if s.bad == nil || s.bad.path != "x."+strings.Repeat("k", 200) {
			t.Fatalf("%d bytes: first bad string = %+v", size, s.bad)
		}
		perByte = append(perByte, float64(s.work)/float64(len(data)))
	}
	for _, r := range perByte {
		// One step per byte plus at most one path comparison per string.
		if r > 1.5 || r > perByte[0]*1.05 {
			t.Fatalf("steps per byte by size = %v: grows with the input", perByte)
		}
	}
	t.Logf("steps per byte by size: %v", perByte)
}

// TestParseAllocationsDoNotGrow parses hostile payloads through the public
// entry point: a refusal must cost the same few allocations at 12 KB as at
// 1 MB (the old locator allocated a path for every token).
func TestParseAllocationsDoNotGrow(t *testing.T) {
	attrs := finalizeAttrs()
	attrs[AttrObjectID] = "a/b.txt"
	allocs := func(data []byte) float64 {
		return testing.AllocsPerRun(3, func() {
			_, err := ParseGCSNotification(context.Background(), attrs, data)
			if CodeOf(err) != CodeInvalidJSON {
				t.Fatalf("err = %v, want invalid_json", err)
			}
		})
	}
	small, large := allocs(hostile(12<<10, 8)), allocs(hostile(1<<20, 8))
	if large > small+4 {
		t.Fatalf("allocations per parse: %v at 12 KB, %v at 1 MB", small, large)
	}
}

// TestDeepNestingRefused: the 1 MB message of nested arrays is refused at
// the depth bound, whatever its strings hold.
func TestDeepNestingRefused(t *testing.T) {
	data := []byte(`{"name":"a","bucket":"b","generation":"1","x":` + strings.Repeat("[\"\xff\",", 1<<17) + `1` + strings.Repeat("]", 1<<17) + `}`)
	_, err := ParseGCSNotification(context.Background(), finalizeAttrs(), data)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Code != CodeInvalidJSON || !strings.Contains(fe.Reason, "nested deeper") {
		t.Fatalf("err = %v, want invalid_json for the nesting", err)
	}
}

// TestScanStopsWhenCancelled: a cancelled context stops every parser's
// input check, with the context's error (so the message is retried, not
// dead-lettered).
func TestScanStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := hostile(1<<20, 4)
	jobData := []byte(`{"job_id":"j","source":{"bucket":"b","prefix":"` + strings.Repeat("a", 1<<20) + `"}}`)
	ceAttrs := map[string]string{
		"ce-id": "7", "ce-source": "//storage.googleapis.com/projects/_/buckets/example-media", "ce-specversion": "1.0",
		"ce-type": CloudEventFinalized, "ce-subject": "objects/a/b.txt", "ce-time": "2024-04-05T19:34:38Z",
	}
	structuredCT := map[string][]string{"Content-Type": {CloudEventsContentType}}
	tests := []struct {
		name  string
		parse func() error
	}{
		{name: "notification", parse: func() error { _, err := ParseGCSNotification(ctx, finalizeAttrs(), big); return err }},
		{name: "cloudevent", parse: func() error { _, err := ParseCloudEventAttributes(ctx, ceAttrs, big); return err }},
		{name: "cloudevent http", parse: func() error { _, _, err := CloudEventHTTP(ctx, structuredCT, big); return err }},
		{name: "job", parse: func() error { _, err := ParseJob(ctx, jobData); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.parse(); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		})
	}
	// The check is made every scanCheckEvery bytes: a short input is read
	// in full before the context is looked at, which costs nothing.
	s := &scanner{data: big}
	if err := s.run(ctx); !errors.Is(err, context.Canceled) || s.work > scanCheckEvery+1 {
		t.Fatalf("run = %v after %d steps, want context.Canceled within %d", err, s.work, scanCheckEvery)
	}
}

func BenchmarkScanHostile(b *testing.B) {
	attrs := finalizeAttrs()
	attrs[AttrObjectID] = "a/b.txt"
	for _, size := range []int{12 << 10, 24 << 10, 48 << 10, 96 << 10, 1 << 20} {
		data := hostile(size, MaxJSONDepth-2)
		b.Run(byteSize(size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				_, _ = ParseGCSNotification(context.Background(), attrs, data)
			}
		})
	}
}

// hostileDeep is the shape of the message that held a core for 86 s: arrays
// nested as deep as the size allows, each holding a string with invalid
// UTF-8.
func hostileDeep(size int) []byte {
	n := size / 8
	return []byte(`{"name":"a/b.txt","bucket":"b","generation":"1","x":` + strings.Repeat("[\"\xff\",", n) + "1" + strings.Repeat("]", n) + "}")
}

func BenchmarkScanHostileDeep(b *testing.B) {
	attrs := finalizeAttrs()
	attrs[AttrObjectID] = "a/b.txt"
	for _, size := range []int{12 << 10, 24 << 10, 48 << 10, 96 << 10} {
		data := hostileDeep(size)
		b.Run(byteSize(size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				_, _ = ParseGCSNotification(context.Background(), attrs, data)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MB"
	}
	return strconv.Itoa(n>>10) + "KB"
}
