package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/sign"
)

// The jobs storage contract runs on MinIO in TestConformance
// (internal/storetest). This file checks what is S3's own: names that XML
// 1.0 cannot carry, listing hints S3 has no use for, the page size, the
// refusal of generations, and the multipart paths of writes and composes.

// listNames lists q and returns the names, failing on an error.
func listNames(t *testing.T, c *s3store.Client, q jobs.ListQuery) []string {
	t.Helper()
	var names []string
	for o, err := range c.List(t.Context(), q) {
		if err != nil {
			t.Fatalf("List(%+v): %v", q, err)
		}
		if o.Generation != 0 {
			t.Errorf("listed %s with generation %d; S3 has none", o.Name, o.Generation)
		}
		names = append(names, o.Name)
	}
	return names
}

func TestMinIOList(t *testing.T) {
	f := newFixture(t)
	// A control character, which XML 1.0 cannot carry unencoded (the
	// client asks for URL-encoded keys), sorts before every other byte.
	all := []string{"a/\x01ctl", "a/1", "a/2 two", "b/1", "b/2", "c"}
	for _, name := range all {
		f.put(t, name, []byte(name))
	}
	for _, tc := range []struct {
		name string
		q    jobs.ListQuery
		want []string
	}{
		{name: "control character", q: jobs.ListQuery{Prefix: "a/"}, want: []string{"a/\x01ctl", "a/1", "a/2 two"}},
		{name: "range ending before a control character", q: jobs.ListQuery{EndOffset: "a/1"}, want: []string{"a/\x01ctl"}},
		{name: "hints ignored", q: jobs.ListQuery{Prefix: "b/", MatchGlob: "b/1", NamesOnly: true}, want: []string{"b/1", "b/2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Bucket = f.bucket
			if got := listNames(t, f.client, q); !slices.Equal(got, tc.want) {
				t.Errorf("listed %q\nwant   %q", got, tc.want)
			}
		})
	}

	t.Run("pages of 3", func(t *testing.T) {
		small, err := s3store.NewClient(f.cfg, &s3store.ClientOptions{ListPageSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []jobs.ListQuery{
			{Bucket: f.bucket},
			{Bucket: f.bucket, StartOffset: "a/2 two", EndOffset: "c"},
		} {
			want := listNames(t, f.client, q)
			if got := listNames(t, small, q); !slices.Equal(got, want) {
				t.Errorf("paged listing %q\nwant             %q", got, want)
			}
		}
	})

	t.Run("versions refused", func(t *testing.T) {
		var last error
		n := 0
		for _, err := range f.client.List(t.Context(), jobs.ListQuery{Bucket: f.bucket, Versions: true}) {
			n++
			last = err
		}
		if n != 1 || !sign.IsInputError(last) {
			t.Errorf("yielded %d items, last error %v; want one InputError", n, last)
		}
	})
}

// TestMinIOStatGenerationRefused: S3 version IDs are opaque strings, not
// generations, so Stat of a generation is an input error (the contract's
// generation behaviours are skipped for s3store).
func TestMinIOStatGenerationRefused(t *testing.T) {
	f := newFixture(t)
	f.put(t, "doc.json", []byte(`{}`))
	if _, err := f.client.Stat(t.Context(), f.bucket, "doc.json", 7); !sign.IsInputError(err) {
		t.Errorf("Stat of a generation = %v, want an InputError", err)
	}
}

// pattern returns n bytes that differ per position and per seed, so that a
// misplaced part shows.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/251) ^ byte(i%251) ^ seed
	}
	return b
}

func TestMinIOWriter(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		size  int
		parts int // 0: one PutObject
	}{
		{"empty", 0, 0},
		{"one PutObject", 1000, 0},
		{"exactly one chunk", s3store.MinPartSize, 0},
		{"multipart, short last part", 2*s3store.MinPartSize + 17, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := pattern(byte(tc.size), tc.size)
			f.calls.take()
			w := f.client.NewWriter(t.Context(), f.bucket, tc.name, jobs.WriteOptions{
				ContentType: "text/csv", Metadata: map[string]string{"row-version": "v1"}, ChunkSize: s3store.MinPartSize,
			})
			// Odd write sizes cross chunk boundaries mid-write.
			for rest := data; len(rest) > 0; {
				k := min(len(rest), 777_777)
				if _, err := w.Write(rest[:k]); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
			}
			if _, err := f.client.Stat(t.Context(), f.bucket, tc.name, 0); !errors.Is(err, jobs.ErrNotFound) {
				t.Errorf("object visible before Close: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			calls := f.calls.take()
			wantPut := 0
			if tc.parts == 0 {
				wantPut = 1
			}
			if calls["UploadPart"] != tc.parts || calls["PutObject"] != wantPut {
				t.Errorf("calls %v, want %d parts (or one PutObject)", calls, tc.parts)
			}
			if got := readAll(t, f.client, f.bucket, tc.name); !bytes.Equal(got, data) {
				t.Errorf("read back %d bytes, wrote %d (or contents differ)", len(got), len(data))
			}
			info, err := f.client.Stat(t.Context(), f.bucket, tc.name, 0)
			if err != nil || info.ContentType != "text/csv" {
				t.Errorf("Stat = %+v, %v; want text/csv", info, err)
			}
			head, err := f.client.SDK().HeadObject(t.Context(), headInput(f.bucket, tc.name))
			if err != nil || head.Metadata["row-version"] != "v1" {
				t.Errorf("metadata = %v, %v; want row-version v1", head.Metadata, err)
			}
		})
	}
}

func TestMinIOWriterIfAbsent(t *testing.T) {
	f := newFixture(t)
	// One PutObject; one chunk sent as a one-part upload (the condition on
	// a small Complete call); two parts.
	for _, size := range []int{10, 1 << 20, s3store.MinPartSize + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			name := fmt.Sprintf("once-%d", size)
			write := func(seed byte) error {
				w := f.client.NewWriter(t.Context(), f.bucket, name, jobs.WriteOptions{IfAbsent: true, ChunkSize: s3store.MinPartSize})
				if _, err := w.Write(pattern(seed, size)); err != nil {
					return err
				}
				return w.Close()
			}
			if err := write(1); err != nil {
				t.Fatal(err)
			}
			if err := write(2); !errors.Is(err, jobs.ErrExists) {
				t.Fatalf("second IfAbsent write = %v, want ErrExists", err)
			}
			if got := readAll(t, f.client, f.bucket, name); !bytes.Equal(got, pattern(1, size)) {
				t.Errorf("the refused write changed the object")
			}
			uploads, err := f.client.SDK().ListMultipartUploads(t.Context(), listUploadsInput(f.bucket))
			if err != nil {
				t.Fatal(err)
			}
			if len(uploads.Uploads) != 0 {
				t.Errorf("%d multipart uploads left behind", len(uploads.Uploads))
			}
		})
	}
}

func TestMinIOWriterAbandoned(t *testing.T) {
	f := newFixture(t)
	for _, size := range []int{10, s3store.MinPartSize + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			name := fmt.Sprintf("abandoned-%d", size)
			ctx, cancel := context.WithCancel(t.Context())
			w := f.client.NewWriter(ctx, f.bucket, name, jobs.WriteOptions{ChunkSize: s3store.MinPartSize})
			if _, err := w.Write(pattern(3, size)); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := w.Close(); !errors.Is(err, context.Canceled) {
				t.Errorf("Close after cancel = %v, want context.Canceled", err)
			}
			if _, err := f.client.Stat(t.Context(), f.bucket, name, 0); !errors.Is(err, jobs.ErrNotFound) {
				t.Errorf("abandoned object exists: %v", err)
			}
			uploads, err := f.client.SDK().ListMultipartUploads(t.Context(), listUploadsInput(f.bucket))
			if err != nil {
				t.Fatal(err)
			}
			if len(uploads.Uploads) != 0 {
				t.Errorf("%d multipart uploads left behind", len(uploads.Uploads))
			}
		})
	}
}

func TestMinIOCompose(t *testing.T) {
	f := newFixture(t)
	big := s3store.MinPartSize + 100 // copied by the server when it starts a part
	for _, tc := range []struct {
		name   string
		sizes  []int
		copies int // parts the server copies itself
	}{
		{"small parts, streamed", []int{100, 0, 2000, 3}, 0},
		{"large first, copied", []int{big, 10, 20}, 1},
		{"large after small, streamed", []int{10, big}, 0},
		{"large, large, small", []int{big, big, 7}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srcs []string
			var want []byte
			for i, n := range tc.sizes {
				name := fmt.Sprintf("%s/part-%02d", tc.name, i)
				data := pattern(byte(i+1), n)
				f.put(t, name, data)
				srcs = append(srcs, name)
				want = append(want, data...)
			}
			dst := tc.name + "/manifest"
			f.calls.take()
			if err := f.client.Compose(t.Context(), f.bucket, dst, srcs, jobs.WriteOptions{ContentType: "application/jsonl"}); err != nil {
				t.Fatal(err)
			}
			if calls := f.calls.take(); calls["UploadPartCopy"] != tc.copies {
				t.Errorf("calls %v, want %d UploadPartCopy", calls, tc.copies)
			}
			if got := readAll(t, f.client, f.bucket, dst); !bytes.Equal(got, want) {
				t.Errorf("composed %d bytes, want %d (or contents differ)", len(got), len(want))
			}
			// Composing again replaces dst with the same bytes.
			if err := f.client.Compose(t.Context(), f.bucket, dst, srcs, jobs.WriteOptions{}); err != nil {
				t.Fatalf("second compose: %v", err)
			}
			if err := f.client.Compose(t.Context(), f.bucket, dst, srcs, jobs.WriteOptions{IfAbsent: true}); !errors.Is(err, jobs.ErrExists) {
				t.Errorf("IfAbsent compose onto an existing object = %v, want ErrExists", err)
			}
		})
	}
}
