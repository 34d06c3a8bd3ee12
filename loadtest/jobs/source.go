package main

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/jobs"
)

// genSource is a bucket of n generated objects, "bench/0000000" to
// "bench/NNNNNNN", behind the jobs.Source interface: fake-gcs-server cannot
// hold 100,000 objects (its inserts and listings are O(n)), and the point
// is the pipeline, not the listing. Names have a fixed width, so name order
// is index order and offsets are found by binary search. List yields pages
// of 1000 as a real lister would, taking pageDelay per page.
type genSource struct {
	n         int
	pageDelay time.Duration
}

const genPrefix = "bench/"

func genName(i int) string { return fmt.Sprintf("%s%07d", genPrefix, i) }

func genInfo(i int) jobs.ObjectInfo {
	return jobs.ObjectInfo{
		Name:        genName(i),
		Generation:  1_700_000_000_000_000 + int64(i),
		Size:        int64(1000 + i%5000),
		ContentType: "image/jpeg",
		Updated:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// List implements jobs.Lister.
func (g genSource) List(ctx context.Context, q jobs.ListQuery) iter.Seq2[jobs.ObjectInfo, error] {
	return func(yield func(jobs.ObjectInfo, error) bool) {
		lo := sort.Search(g.n, func(i int) bool { return genName(i) >= q.StartOffset })
		hi := g.n
		if q.EndOffset != "" {
			hi = sort.Search(g.n, func(i int) bool { return genName(i) >= q.EndOffset })
		}
		for i := lo; i < hi; i++ {
			if (i-lo)%1000 == 0 && g.pageDelay > 0 {
				select {
				case <-time.After(g.pageDelay):
				case <-ctx.Done():
					yield(jobs.ObjectInfo{}, ctx.Err())
					return
				}
			}
			info := genInfo(i)
			if !strings.HasPrefix(info.Name, q.Prefix) {
				continue
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// Stat implements jobs.Source.
func (g genSource) Stat(_ context.Context, _, name string, _ int64) (jobs.ObjectInfo, error) {
	i := sort.Search(g.n, func(i int) bool { return genName(i) >= name })
	if i == g.n || genName(i) != name {
		return jobs.ObjectInfo{}, jobs.ErrNotFound
	}
	return genInfo(i), nil
}
