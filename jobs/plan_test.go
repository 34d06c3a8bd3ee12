package jobs

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/linkissuer/linkissuer/schema"
)

// memLister lists a sorted in-memory slice with the Lister contract.
type memLister []ObjectInfo

func (m memLister) List(_ context.Context, q ListQuery) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		for _, o := range m {
			if !strings.HasPrefix(o.Name, q.Prefix) || o.Name < q.StartOffset || (q.EndOffset != "" && o.Name >= q.EndOffset) {
				continue
			}
			if !yield(o, nil) {
				return
			}
		}
	}
}

func (m memLister) Stat(context.Context, string, string, int64) (ObjectInfo, error) {
	return ObjectInfo{}, ErrNotFound
}

func names(n int, pattern string) memLister {
	var m memLister
	for i := range n {
		m = append(m, ObjectInfo{Name: fmt.Sprintf(pattern, i), Generation: 1})
	}
	return m
}

// shardSizes partitions l by bounds and counts each shard's objects: an
// object belongs to the shard with the last bound at or before its name.
func shardSizes(l memLister, prefix string, glob Glob, bounds []string) []int {
	sizes := make([]int, len(bounds))
	for o := range l.List(context.Background(), ListQuery{Prefix: prefix}) {
		if glob.Match(o.Name) {
			i, _ := slices.BinarySearch(bounds, o.Name+"\x00")
			sizes[i-1]++
		}
	}
	return sizes
}

func TestSplitListing(t *testing.T) {
	t.Parallel()
	versions := memLister{}
	for i := range 5 {
		for g := range 3 { // three generations of each name
			versions = append(versions, ObjectInfo{Name: fmt.Sprintf("v/%d", i), Generation: int64(g + 1)})
		}
	}
	for _, tc := range []struct {
		name   string
		lister memLister
		source schema.JobSource
		size   int
		sizes  []int
		total  int64
	}{
		{name: "even", lister: names(10, "o/%02d"), source: schema.JobSource{Prefix: "o/"}, size: 3, sizes: []int{3, 3, 3, 1}, total: 10},
		{name: "prefix", lister: append(names(5, "a/%d"), names(4, "b/%d")...), source: schema.JobSource{Prefix: "b/"}, size: 2, sizes: []int{2, 2}, total: 4},
		{name: "glob", lister: names(20, "o/%02d"), source: schema.JobSource{Match: "o/?[05]"}, size: 2, sizes: []int{2, 2}, total: 4},
		{name: "generations stay together", lister: versions, source: schema.JobSource{Prefix: "v/", IncludeGenerations: true}, size: 4, sizes: []int{6, 6, 3}, total: 15},
		{name: "small", lister: names(3, "o/%d"), size: 10, sizes: []int{3}, total: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			glob, err := CompileGlob(tc.source.Match)
			if err != nil {
				t.Fatal(err)
			}
			r := &Runner{}
			task := &task{job: &schema.Job{Source: tc.source}, glob: glob, backend: Backend{Source: tc.lister}}
			bounds, total, err := r.splitListing(context.Background(), task, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if total != tc.total || bounds[0] != "" {
				t.Errorf("total %d, bounds %q", total, bounds)
			}
			if got := shardSizes(tc.lister, tc.source.Prefix, glob, bounds); !slices.Equal(got, tc.sizes) {
				t.Errorf("shard sizes %v (bounds %q), want %v", got, bounds, tc.sizes)
			}
		})
	}
}

// TestSplitListingCapsShards: a listing that would need more than
// schema.MaxShards shards gets fewer, larger ones that still cover it.
func TestSplitListingCapsShards(t *testing.T) {
	t.Parallel()
	l := names(3*schema.MaxShards+7, "o/%06d")
	task := &task{job: &schema.Job{}, backend: Backend{Source: l}}
	bounds, total, err := (&Runner{}).splitListing(context.Background(), task, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(bounds) > schema.MaxShards || total != int64(len(l)) {
		t.Fatalf("%d shards for %d objects", len(bounds), total)
	}
	sum := 0
	for i, n := range shardSizes(l, "", Glob{}, bounds) {
		if n == 0 || n > 8 {
			t.Errorf("shard %d has %d objects", i, n)
		}
		sum += n
	}
	if sum != len(l) {
		t.Errorf("shards cover %d of %d objects", sum, len(l))
	}
}
