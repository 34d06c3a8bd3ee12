package jobs

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/internal/slowtest"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/worker"
)

// composeRecorder is the fixture's store, recording every compose call.
type composeRecorder struct {
	*gcsstore.Client
	mu    sync.Mutex
	calls []composeCall
}

type composeCall struct {
	dst  string
	srcs []string
}

func (c *composeRecorder) Compose(ctx context.Context, bucket, dst string, srcs []string, o WriteOptions) error {
	c.mu.Lock()
	c.calls = append(c.calls, composeCall{dst: dst, srcs: slices.Clone(srcs)})
	c.mu.Unlock()
	return c.Client.Compose(ctx, bucket, dst, srcs, o)
}

// TestComposeTree splits a job into one shard per object, more than
// MaxComposeSources of them for the rows and for the error rows, so that
// both files are composed in a tree (CSV: after a header object too). It
// checks that no compose call takes more than 32 sources, that the tree
// has an intermediate level, that the final files hold every row once, in
// shard order, with one header, and that parts and composites are deleted.
func TestComposeTree(t *testing.T) {
	t.Parallel()
	slowtest.Require(t)
	const public, private = 40, 36 // 77 row sources and 37 error sources with the CSV headers
	for _, tc := range []struct {
		name   string
		format schema.ManifestFormat
		list   bool
	}{
		{name: "prefix", format: schema.FormatCSV},
		{name: "list", format: schema.FormatJSONL, list: true},
	} {
		t.Run(string(tc.format)+"/"+tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.seed("public/tree/%03d.jpg", public)
			f.seed("private/tree/%03d", private)
			allowed, refused := f.objects("public/tree/"), f.objects("private/tree/")
			src := schema.JobSource{Bucket: mediaBucket}
			if tc.list {
				for _, n := range slices.Sorted(keys(allowed, refused)) {
					src.Objects = append(src.Objects, schema.ObjectRef{Name: n})
				}
			}
			store := &composeRecorder{Client: f.store}
			r := f.runner(func(o *Options) {
				o.Backends = f.storeBackends(store, f.signer, nil)
				o.Split = &SplitOptions{Above: 1, ShardSize: 1}
			})
			name := "tree/" + tc.name + "." + string(tc.format)
			job := manifestJob("tree-1", "gs://exports/"+name, tc.format, src)
			shards, err := r.Handle(context.Background(), jobMessage(t, job))
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) != public+private {
				t.Fatalf("%d shards, want one per object (%d)", len(shards), public+private)
			}
			var completions []worker.Output
			for _, i := range rand.Perm(len(shards)) {
				outs, err := r.Handle(context.Background(), &worker.Message{ID: "s", Data: shards[i].Data, Attributes: shards[i].Attributes})
				if err != nil {
					t.Fatalf("shard %d: %v", i, err)
				}
				completions = append(completions, outs...)
			}
			if len(completions) != 1 {
				t.Fatalf("%d completions, want 1", len(completions))
			}
			done := decodeDone(t, completions[0])
			checkDone(t, f, done, job, schema.JobCounts{Listed: public + private, Signed: public, Skipped: private}, public+private)
			f.checkManifest(exportsBucket, name, tc.format, allowed, 2*time.Hour)
			errName := ErrorsObject(name)
			errs := f.errorRows(exportsBucket, errName, tc.format)
			if len(errs) != private {
				t.Errorf("%d error rows, want %d", len(errs), private)
			}
			for n := range refused {
				if errs[n] != schema.CodePolicyRefused {
					t.Errorf("%s: error row %q, want %s", n, errs[n], schema.CodePolicyRefused)
				}
			}

			// Parts are composed in shard order, and a shard here is one
			// object: both files list their objects in name order, under
			// one header.
			rows := readObjectNames(t, f.read(exportsBucket, name), tc.format, false)
			if !slices.IsSorted(rows) || len(rows) != public {
				t.Errorf("manifest: %d rows in shard order %v, want %d", len(rows), slices.IsSorted(rows), public)
			}
			errRows := readObjectNames(t, f.read(exportsBucket, errName), tc.format, true)
			if !slices.IsSorted(errRows) || len(errRows) != private {
				t.Errorf("errors file: %d rows in shard order %v, want %d", len(errRows), slices.IsSorted(errRows), private)
			}
			if tc.format == schema.FormatCSV {
				for file, header := range map[string][]string{name: schema.ManifestCSVHeader, errName: schema.ErrorCSVHeader} {
					data, line := string(f.read(exportsBucket, file)), strings.Join(header, ",")+"\r\n" // RFC 4180
					if !strings.HasPrefix(data, line) || strings.Count(data, line) != 1 {
						t.Errorf("%s: want exactly one header, first", file)
					}
				}
			}

			// The tree: no call over the limit, an intermediate level for
			// each file, and the final objects composed from composites.
			dir := name + ".parts/tree-1/"
			levels := map[string]int{}
			for _, c := range store.calls {
				if len(c.srcs) == 0 || len(c.srcs) > MaxComposeSources {
					t.Errorf("compose into %s from %d sources", c.dst, len(c.srcs))
				}
				for _, kind := range []string{"rows", "errors"} {
					if strings.HasPrefix(c.dst, dir+"compose."+kind+".") {
						levels[kind]++
					}
				}
				if c.dst == name || c.dst == errName {
					for _, s := range c.srcs {
						if !strings.HasPrefix(s, dir+"compose.") {
							t.Errorf("%s composed from %s, want only composites", c.dst, s)
						}
					}
				}
			}
			// ceil(77/32) = 3 row composites; ceil(37/32) = 2 error ones
			// (JSONL: 76 and 36 sources, the same counts).
			if levels["rows"] != 3 || levels["errors"] != 2 {
				t.Errorf("intermediate composites: %v, want 3 for the rows and 2 for the errors", levels)
			}

			// Parts, headers and composites are gone; the state stays.
			var left []string
			for _, n := range f.names(exportsBucket, dir) {
				rest := strings.TrimPrefix(n, dir)
				if !strings.HasPrefix(rest, "done/") && rest != "plan.json" && rest != "finish.lock" && rest != "complete.json" {
					left = append(left, rest)
				}
			}
			if len(left) > 0 {
				t.Errorf("temporary objects left: %v", left)
			}
		})
	}
}

// readObjectNames returns the object column of a manifest (or errors
// file), in file order.
func readObjectNames(t *testing.T, data []byte, format schema.ManifestFormat, errorsFile bool) []string {
	t.Helper()
	header := schema.ManifestCSVHeader
	if errorsFile {
		header = schema.ErrorCSVHeader
	}
	rr, err := schema.NewRowReader(strings.NewReader(string(data)), format, header)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		var name string
		if errorsFile {
			row, err := rr.ReadError()
			if errors.Is(err, io.EOF) {
				return out
			} else if err != nil {
				t.Fatal(err)
			}
			name = row.Object
		} else {
			row, err := rr.ReadRow()
			if errors.Is(err, io.EOF) {
				return out
			} else if err != nil {
				t.Fatal(err)
			}
			name = row.Object
		}
		out = append(out, name)
	}
}
