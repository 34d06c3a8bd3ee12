// Package storetest is the conformance suite of the jobs storage contract
// (jobs.Source, jobs.Store, jobs.Versioned; stated in jobs/source.go): one
// table of behaviours that every store driver must show, run against a real
// or emulated backend by the driver's own test (gcsstore against
// fake-gcs-server, s3store against MinIO).
//
// A backend may skip a behaviour only by naming it in Backend.Skip with the
// reason; a name that is not a behaviour fails the run, so that a skip
// cannot outlive the behaviour it excused.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/linkissuer/linkissuer/blob"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/childproc"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/sign"
)

// Store is what a driver under test must be.
type Store interface {
	jobs.Source
	jobs.Store
}

// Backend is one driver over a fresh, empty bucket.
type Backend struct {
	Store  Store
	Bucket string
	// Unreachable is the same driver with an endpoint that refuses
	// connections, its retries bounded so that the test ends quickly.
	Unreachable Store
	// Skip names behaviours this backend does not have, each with the
	// reason.
	Skip map[string]string
}

// RefusingURL is the URL of a loopback port that was free a moment ago:
// connections to it are refused. A driver pointed at it is what
// Backend.Unreachable wants.
func RefusingURL(t *testing.T) string {
	t.Helper()
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// behaviour is one rule of the contract.
type behaviour struct {
	name string
	run  func(t *testing.T, b Backend)
}

// Run checks every behaviour, in parallel, on a backend that newBackend
// makes; it is called once per behaviour, so behaviours do not see each
// other's objects.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	names := map[string]bool{}
	for _, bh := range behaviours {
		names[bh.name] = true
	}
	for _, bh := range behaviours {
		t.Run(bh.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t)
			for name := range b.Skip {
				if !names[name] {
					t.Fatalf("Backend.Skip names %q, which is not a behaviour", name)
				}
			}
			if why, ok := b.Skip[bh.name]; ok {
				t.Skip(why)
			}
			bh.run(t, b)
		})
	}
}

var behaviours = []behaviour{
	{name: "write then read back", run: writeReadBack},
	{name: "object appears only at Close", run: appearsAtClose},
	{name: "overwrite: last Close wins", run: overwrite},
	{name: "IfAbsent refuses an existing name", run: ifAbsent},
	{name: "cancelled write leaves no object", run: cancelledWrite},
	{name: "missing object is ErrNotFound", run: missingObject},
	{name: "delete, and delete of a missing object", run: deleteObject},
	{name: "compose concatenates in order", run: composeOrder},
	{name: "compose refuses an existing dst with IfAbsent", run: composeIfAbsent},
	{name: "compose with a missing source", run: composeMissing},
	{name: "compose source count", run: composeCount},
	{name: "list ranges, prefix and byte order", run: listRanges},
	{name: "list shards cover the bucket once", run: listShards},
	{name: "list pages through many objects", run: listPages},
	{name: "list of a missing bucket is ErrNotFound", run: listMissingBucket},
	{name: "list stops when the caller stops", run: listEarlyStop},
	{name: "cancelled calls are cancellations", run: cancelled},
	{name: "unreachable store is a storage outage", run: unreachable},
	{name: "generation conditions", run: generations},
	{name: "compose over a replaced generation", run: composeGeneration},
	{name: "stat of a generation", run: statGeneration},
}

// put writes name whole, failing t on an error.
func put(t *testing.T, s Store, bucket, name string, data []byte, o blob.WriteOptions) {
	t.Helper()
	if err := write(t.Context(), s, bucket, name, data, o); err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
}

func write(ctx context.Context, s Store, bucket, name string, data []byte, o blob.WriteOptions) error {
	w := s.NewWriter(ctx, bucket, name, o)
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func read(t *testing.T, s Store, bucket, name string) []byte {
	t.Helper()
	r, err := s.NewReader(t.Context(), bucket, name)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return data
}

func names(t *testing.T, s Store, q blob.ListQuery) []string {
	t.Helper()
	var out []string
	for o, err := range s.List(t.Context(), q) {
		if err != nil {
			t.Fatalf("List(%+v): %v", q, err)
		}
		out = append(out, o.Name)
	}
	return out
}

func absent(t *testing.T, s Store, bucket, name, why string) {
	t.Helper()
	if _, err := s.Stat(t.Context(), bucket, name, 0); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("%s: Stat(%s) = %v, want ErrNotFound", why, name, err)
	}
}

// pattern returns n bytes that differ per position and per seed, so that a
// misplaced or truncated part shows.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/251) ^ byte(i%251) ^ seed
	}
	return b
}

func writeReadBack(t *testing.T, b Backend) {
	for _, size := range []int{0, 1, 1000, 3<<20 + 17} {
		name := fmt.Sprintf("dir/obj-%d.jsonl", size)
		data := pattern(byte(size), size)
		put(t, b.Store, b.Bucket, name, data, blob.WriteOptions{ContentType: "application/jsonl", Metadata: map[string]string{"row-version": "v1"}, ChunkSize: 1 << 20})
		if got := read(t, b.Store, b.Bucket, name); !bytes.Equal(got, data) {
			t.Errorf("%s: read back %d bytes, wrote %d (or contents differ)", name, len(got), len(data))
		}
		info, err := b.Store.Stat(t.Context(), b.Bucket, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != name || info.Size != int64(size) || info.ContentType != "application/jsonl" || info.Updated.IsZero() {
			t.Errorf("Stat(%s) = %+v", name, info)
		}
	}
}

func appearsAtClose(t *testing.T, b Backend) {
	w := b.Store.NewWriter(t.Context(), b.Bucket, "later", blob.WriteOptions{ChunkSize: 1 << 20})
	if _, err := w.Write(pattern(1, 2<<20+5)); err != nil {
		t.Fatal(err)
	}
	absent(t, b.Store, b.Bucket, "later", "before Close")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Store.Stat(t.Context(), b.Bucket, "later", 0); err != nil {
		t.Errorf("after Close: %v", err)
	}
}

func overwrite(t *testing.T, b Backend) {
	put(t, b.Store, b.Bucket, "x", []byte("first, longer"), blob.WriteOptions{})
	put(t, b.Store, b.Bucket, "x", []byte("second"), blob.WriteOptions{})
	if got := read(t, b.Store, b.Bucket, "x"); string(got) != "second" {
		t.Errorf("read %q after overwrite, want %q", got, "second")
	}
}

func ifAbsent(t *testing.T, b Backend) {
	once := blob.WriteOptions{IfAbsent: true}
	if err := write(t.Context(), b.Store, b.Bucket, "once", []byte("one"), once); err != nil {
		t.Fatalf("first IfAbsent write: %v", err)
	}
	err := write(t.Context(), b.Store, b.Bucket, "once", []byte("two"), once)
	if !errors.Is(err, blob.ErrExists) {
		t.Fatalf("second IfAbsent write = %v, want ErrExists", err)
	}
	if c := failure.Classify(err); c.Kind == failure.KindTransient && c.Component == failure.Storage {
		t.Errorf("a failed condition is classified as a storage outage: %v", err)
	}
	if got := read(t, b.Store, b.Bucket, "once"); string(got) != "one" {
		t.Errorf("the refused write changed the object to %q", got)
	}
}

func cancelledWrite(t *testing.T, b Backend) {
	for _, size := range []int{10, 3<<20 + 1} {
		name := fmt.Sprintf("abandoned-%d", size)
		ctx, cancel := context.WithCancel(t.Context())
		w := b.Store.NewWriter(ctx, b.Bucket, name, blob.WriteOptions{ChunkSize: 1 << 20})
		w.Write(pattern(3, size)) // may already fail once a chunk is sent
		cancel()
		if err := w.Close(); err == nil {
			t.Errorf("%s: Close after cancel succeeded", name)
		}
		absent(t, b.Store, b.Bucket, name, "abandoned write")
	}
}

func missingObject(t *testing.T, b Backend) {
	absent(t, b.Store, b.Bucket, "missing", "missing object")
	_, err := b.Store.NewReader(t.Context(), b.Bucket, "missing")
	if !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("NewReader of a missing object = %v, want ErrNotFound", err)
	}
	if c := failure.Classify(err); c.Component == failure.Storage {
		t.Errorf("a missing object is classified as a storage outage: %v", err)
	}
	if _, err := b.Store.Stat(t.Context(), "no-such-bucket-here", "x", 0); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat in a missing bucket = %v, want ErrNotFound", err)
	}
}

func deleteObject(t *testing.T, b Backend) {
	put(t, b.Store, b.Bucket, "doomed", []byte("x"), blob.WriteOptions{})
	if err := b.Store.Delete(t.Context(), b.Bucket, "doomed"); err != nil {
		t.Fatal(err)
	}
	absent(t, b.Store, b.Bucket, "doomed", "after Delete")
	if err := b.Store.Delete(t.Context(), b.Bucket, "doomed"); err != nil && !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Delete of a missing object = %v, want success or ErrNotFound", err)
	}
}

func composeOrder(t *testing.T, b Backend) {
	for _, sizes := range [][]int{{5}, {100, 0, 2000, 3}, slices.Repeat([]int{64}, blob.MaxComposeSources)} {
		var srcs []string
		var want []byte
		for i, n := range sizes {
			name := fmt.Sprintf("c%d/part-%02d", len(sizes), i)
			data := pattern(byte(i+1), n)
			put(t, b.Store, b.Bucket, name, data, blob.WriteOptions{})
			srcs, want = append(srcs, name), append(want, data...)
		}
		dst := fmt.Sprintf("c%d/manifest", len(sizes))
		o := blob.WriteOptions{ContentType: "application/jsonl"}
		if err := b.Store.Compose(t.Context(), b.Bucket, dst, srcs, o); err != nil {
			t.Fatal(err)
		}
		if got := read(t, b.Store, b.Bucket, dst); !bytes.Equal(got, want) {
			t.Errorf("composed %d parts into %d bytes, want %d (or contents differ)", len(sizes), len(got), len(want))
		}
		if info, err := b.Store.Stat(t.Context(), b.Bucket, dst, 0); err != nil || info.ContentType != "application/jsonl" {
			t.Errorf("Stat(%s) = %+v, %v; want application/jsonl", dst, info, err)
		}
		// Composing again replaces dst with the same bytes.
		if err := b.Store.Compose(t.Context(), b.Bucket, dst, srcs, blob.WriteOptions{}); err != nil {
			t.Fatalf("second compose: %v", err)
		}
	}
}

func composeIfAbsent(t *testing.T, b Backend) {
	put(t, b.Store, b.Bucket, "p", []byte("p"), blob.WriteOptions{})
	put(t, b.Store, b.Bucket, "dst", []byte("old"), blob.WriteOptions{})
	if err := b.Store.Compose(t.Context(), b.Bucket, "dst", []string{"p"}, blob.WriteOptions{IfAbsent: true}); !errors.Is(err, blob.ErrExists) {
		t.Errorf("IfAbsent compose onto an existing object = %v, want ErrExists", err)
	}
	if got := read(t, b.Store, b.Bucket, "dst"); string(got) != "old" {
		t.Errorf("the refused compose changed dst to %q", got)
	}
	if err := b.Store.Compose(t.Context(), b.Bucket, "new", []string{"p"}, blob.WriteOptions{IfAbsent: true}); err != nil {
		t.Errorf("IfAbsent compose onto a free name: %v", err)
	}
}

func composeMissing(t *testing.T, b Backend) {
	put(t, b.Store, b.Bucket, "present", []byte("x"), blob.WriteOptions{})
	err := b.Store.Compose(t.Context(), b.Bucket, "out", []string{"present", "absent"}, blob.WriteOptions{})
	if !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Compose with a missing source = %v, want ErrNotFound", err)
	}
	absent(t, b.Store, b.Bucket, "out", "failed compose")
}

func composeCount(t *testing.T, b Backend) {
	for _, srcs := range [][]string{nil, slices.Repeat([]string{"present"}, blob.MaxComposeSources+1)} {
		err := b.Store.Compose(t.Context(), b.Bucket, "out", srcs, blob.WriteOptions{})
		if !sign.IsInputError(err) {
			t.Errorf("Compose of %d sources = %v, want an InputError", len(srcs), err)
		}
		if c := failure.Classify(err); c.Kind != failure.KindPermanent {
			t.Errorf("Compose of %d sources is %v, want permanent", len(srcs), c.Kind)
		}
	}
}

// listed is a bucket of names that need escaping or sort by byte: space,
// '+', '%', '~', non-ASCII (é is 0xC3 0xA9, after every ASCII byte).
var listed = []string{"a/1", "a/2 two", "a/2+plus", "a/2%25pct", "a/3~", "a/é", "b/1", "b/2", "c"}

func seedListed(t *testing.T, b Backend) []string {
	for _, name := range listed {
		put(t, b.Store, b.Bucket, name, []byte(name), blob.WriteOptions{})
	}
	sorted := slices.Clone(listed)
	slices.Sort(sorted) // Go compares strings by bytes, as the contract lists
	return sorted
}

func listRanges(t *testing.T, b Backend) {
	sorted := seedListed(t, b)
	for _, tc := range []struct {
		name string
		q    blob.ListQuery
		want []string
	}{
		{name: "whole bucket", want: sorted},
		{name: "prefix", q: blob.ListQuery{Prefix: "b/"}, want: []string{"b/1", "b/2"}},
		{name: "start inclusive", q: blob.ListQuery{StartOffset: "a/3~"}, want: []string{"a/3~", "a/é", "b/1", "b/2", "c"}},
		{name: "start between names", q: blob.ListQuery{StartOffset: "a/25"}, want: []string{"a/3~", "a/é", "b/1", "b/2", "c"}},
		{name: "end exclusive", q: blob.ListQuery{EndOffset: "a/2+plus"}, want: []string{"a/1", "a/2 two", "a/2%25pct"}},
		{name: "range with prefix", q: blob.ListQuery{Prefix: "a/", StartOffset: "a/2 two", EndOffset: "a/é"}, want: []string{"a/2 two", "a/2%25pct", "a/2+plus", "a/3~"}},
		{name: "non-ASCII start", q: blob.ListQuery{StartOffset: "a/é"}, want: []string{"a/é", "b/1", "b/2", "c"}},
		{name: "empty range", q: blob.ListQuery{StartOffset: "b/2", EndOffset: "b/2"}, want: nil},
		{name: "hints are only hints", q: blob.ListQuery{Prefix: "b/", MatchGlob: "b/1", NamesOnly: true}, want: []string{"b/1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Bucket = b.Bucket
			got := names(t, b.Store, q)
			if q.MatchGlob != "" {
				// A lister may ignore the hint; the caller filters again.
				got = slices.DeleteFunc(got, func(n string) bool { return n != q.MatchGlob })
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("listed %q\nwant   %q", got, tc.want)
			}
		})
	}
	for o, err := range b.Store.List(t.Context(), blob.ListQuery{Bucket: b.Bucket, Prefix: "b/1"}) {
		if err != nil {
			t.Fatal(err)
		}
		if o.Size != int64(len("b/1")) || o.Updated.IsZero() {
			t.Errorf("listed %+v, want size 3 and a time", o)
		}
	}
}

func listShards(t *testing.T, b Backend) {
	sorted := seedListed(t, b)
	bounds := []string{"", "a/2", "a/2+", "a/é", "b/2", ""}
	var got []string
	for i := 0; i+1 < len(bounds); i++ {
		got = append(got, names(t, b.Store, blob.ListQuery{Bucket: b.Bucket, StartOffset: bounds[i], EndOffset: bounds[i+1]})...)
	}
	if !slices.Equal(got, sorted) {
		t.Errorf("shards listed %q\nwant        %q", got, sorted)
	}
}

// listPages lists more objects than one page of any backend's default
// (GCS and S3: 1000) holds.
func listPages(t *testing.T, b Backend) {
	const n = 1005
	want := make([]string, n)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range want {
		want[i] = fmt.Sprintf("many/%04d", i)
		g.Go(func() error { return write(t.Context(), b.Store, b.Bucket, want[i], nil, blob.WriteOptions{}) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	put(t, b.Store, b.Bucket, "other", nil, blob.WriteOptions{})
	if got := names(t, b.Store, blob.ListQuery{Bucket: b.Bucket, Prefix: "many/"}); !slices.Equal(got, want) {
		t.Errorf("listed %d names, want %d in order", len(got), len(want))
	}
	if got := names(t, b.Store, blob.ListQuery{Bucket: b.Bucket, StartOffset: "many/0998", EndOffset: "many/1002"}); !slices.Equal(got, want[998:1002]) {
		t.Errorf("listed %q across the page boundary, want %q", got, want[998:1002])
	}
}

func listMissingBucket(t *testing.T, b Backend) {
	n := 0
	var last error
	for _, err := range b.Store.List(t.Context(), blob.ListQuery{Bucket: "no-such-bucket-here"}) {
		n++
		last = err
	}
	if n != 1 || !errors.Is(last, blob.ErrNotFound) {
		t.Errorf("yielded %d items, last error %v; want one ErrNotFound", n, last)
	}
}

func listEarlyStop(t *testing.T, b Backend) {
	seedListed(t, b)
	n := 0
	for _, err := range b.Store.List(t.Context(), blob.ListQuery{Bucket: b.Bucket}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("listed %d before stopping, want 3", n)
	}
}

// cancelled checks that calls under a cancelled context fail as
// cancellations: not as missing objects, and not as storage outages.
func cancelled(t *testing.T, b Backend) {
	put(t, b.Store, b.Bucket, "here", []byte("x"), blob.WriteOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		c := failure.Classify(err)
		if err == nil || errors.Is(err, blob.ErrNotFound) || c.Kind != failure.KindTransient || c.Component != failure.Canceled {
			t.Errorf("%s under a cancelled context = %v (%s), want a cancellation", op, err, c.Reason())
		}
	}
	_, err := b.Store.Stat(ctx, b.Bucket, "here", 0)
	check("Stat", err)
	var listErr error
	for _, err := range b.Store.List(ctx, blob.ListQuery{Bucket: b.Bucket}) {
		listErr = err
	}
	check("List", listErr)
	check("Compose", b.Store.Compose(ctx, b.Bucket, "dst", []string{"here"}, blob.WriteOptions{}))
}

// unreachable checks that a store that refuses connections is reported as
// a storage outage (storage_unavailable): the job is redelivered and the
// outage is counted as the store's, never as the signer's or as a
// permanent failure of the objects.
func unreachable(t *testing.T, b Backend) {
	if b.Unreachable == nil {
		t.Fatal("Backend.Unreachable is nil; build the driver with an endpoint that refuses connections")
	}
	s := b.Unreachable
	check := func(op string, err error) {
		t.Helper()
		if got := failure.Classify(err).Reason(); got != "storage_unavailable" {
			t.Errorf("%s on an unreachable store = %v, classified %s, want storage_unavailable", op, err, got)
		}
		if errors.Is(err, blob.ErrNotFound) {
			t.Errorf("%s on an unreachable store = %v, which says not found", op, err)
		}
	}
	_, err := s.Stat(t.Context(), b.Bucket, "x", 0)
	check("Stat", err)
	var listErr error
	for _, err := range s.List(t.Context(), blob.ListQuery{Bucket: b.Bucket}) {
		listErr = err
	}
	check("List", listErr)
	_, err = s.NewReader(t.Context(), b.Bucket, "x")
	check("NewReader", err)
	check("NewWriter", write(t.Context(), s, b.Bucket, "x", []byte("x"), blob.WriteOptions{}))
	check("Compose", s.Compose(t.Context(), b.Bucket, "dst", []string{"x"}, blob.WriteOptions{}))
}

// generations checks a jobs.Versioned store: Version names the live
// generation and its metadata, and IfGeneration writes only over that
// generation.
func generations(t *testing.T, b Backend) {
	v, ok := b.Store.(jobs.Versioned)
	if !ok {
		t.Fatalf("%T is not a jobs.Versioned; skip this behaviour with the reason", b.Store)
	}
	if _, err := v.Version(t.Context(), b.Bucket, "lock"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Version of a missing object = %v, want ErrNotFound", err)
	}
	put(t, b.Store, b.Bucket, "lock", []byte("1"), blob.WriteOptions{Metadata: map[string]string{"owner": "job-1"}})
	ver, err := v.Version(t.Context(), b.Bucket, "lock")
	if err != nil {
		t.Fatal(err)
	}
	if ver.Generation == 0 || ver.Metadata["owner"] != "job-1" {
		t.Errorf("Version = %+v, want a generation and owner job-1", ver)
	}
	if err := write(t.Context(), b.Store, b.Bucket, "lock", []byte("2"), blob.WriteOptions{IfGeneration: ver.Generation}); err != nil {
		t.Fatalf("write over the live generation: %v", err)
	}
	if err := write(t.Context(), b.Store, b.Bucket, "lock", []byte("3"), blob.WriteOptions{IfGeneration: ver.Generation}); !errors.Is(err, blob.ErrExists) {
		t.Errorf("write over a replaced generation = %v, want ErrExists", err)
	}
	if got := read(t, b.Store, b.Bucket, "lock"); string(got) != "2" {
		t.Errorf("read %q, want the conditional write's %q", got, "2")
	}
}

// composeGeneration checks that Compose with IfGeneration replaces only
// that generation of dst.
func composeGeneration(t *testing.T, b Backend) {
	v, ok := b.Store.(jobs.Versioned)
	if !ok {
		t.Fatalf("%T is not a jobs.Versioned; skip this behaviour with the reason", b.Store)
	}
	put(t, b.Store, b.Bucket, "part", []byte("p"), blob.WriteOptions{})
	put(t, b.Store, b.Bucket, "dst", []byte("1"), blob.WriteOptions{})
	ver, err := v.Version(t.Context(), b.Bucket, "dst")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Store.Compose(t.Context(), b.Bucket, "dst", []string{"part"}, blob.WriteOptions{IfGeneration: ver.Generation}); err != nil {
		t.Fatalf("compose over the live generation: %v", err)
	}
	if err := b.Store.Compose(t.Context(), b.Bucket, "dst", []string{"part", "part"}, blob.WriteOptions{IfGeneration: ver.Generation}); !errors.Is(err, blob.ErrExists) {
		t.Errorf("compose over a replaced generation = %v, want ErrExists", err)
	}
	if got := read(t, b.Store, b.Bucket, "dst"); string(got) != "p" {
		t.Errorf("read %q, want the first compose's %q", got, "p")
	}
}

// statGeneration checks that Stat of a named generation describes that
// generation, and that a generation that never existed is ErrNotFound.
func statGeneration(t *testing.T, b Backend) {
	put(t, b.Store, b.Bucket, "g", []byte("one"), blob.WriteOptions{})
	first, err := b.Store.Stat(t.Context(), b.Bucket, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Store.Stat(t.Context(), b.Bucket, "g", first.Generation)
	if err != nil || got.Generation != first.Generation || got.Size != 3 {
		t.Errorf("Stat of generation %d = %+v, %v", first.Generation, got, err)
	}
	if _, err := b.Store.Stat(t.Context(), b.Bucket, "g", first.Generation+12345); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat of a generation that never existed = %v, want ErrNotFound", err)
	}
}
