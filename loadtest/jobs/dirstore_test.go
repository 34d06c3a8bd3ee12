package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/linkissuer/linkissuer/jobs"
)

func writeObject(t *testing.T, ctx context.Context, d dirStore, name, content string, o jobs.WriteOptions) error {
	t.Helper()
	w := d.NewWriter(ctx, "b", name, o)
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	return w.Close()
}

func readObject(t *testing.T, d dirStore, name string) (string, error) {
	t.Helper()
	r, err := d.NewReader(context.Background(), "b", name)
	if err != nil {
		return "", err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	return string(data), err
}

func TestDirStoreKeepsTheStoreContract(t *testing.T) {
	ctx := context.Background()
	d := dirStore{root: t.TempDir()}
	small := jobs.WriteOptions{ChunkSize: 4} // rows cross chunk boundaries

	if err := writeObject(t, ctx, d, "x/part-1", "one\n", small); err != nil {
		t.Fatal(err)
	}
	if err := writeObject(t, ctx, d, "x/part-0", "zero\n", small); err != nil {
		t.Fatal(err)
	}
	// Last Close wins.
	if err := writeObject(t, ctx, d, "x/part-0", "ZERO\n", small); err != nil {
		t.Fatal(err)
	}
	// IfAbsent fails on an existing name and leaves it alone.
	if err := writeObject(t, ctx, d, "x/part-0", "lost\n", jobs.WriteOptions{IfAbsent: true}); !errors.Is(err, jobs.ErrExists) {
		t.Errorf("IfAbsent over an existing object: %v, want ErrExists", err)
	}
	// A cancelled writer commits nothing.
	cctx, cancel := context.WithCancel(ctx)
	w := d.NewWriter(cctx, "b", "x/abandoned", small)
	io.WriteString(w, "half a row")
	cancel()
	if err := w.Close(); err == nil {
		t.Error("Close after the writer's ctx was cancelled succeeded")
	}
	if _, err := readObject(t, d, "x/abandoned"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("abandoned write: read gives %v, want ErrNotFound", err)
	}
	if err := d.Compose(ctx, "b", "x.jsonl", []string{"x/part-0", "x/part-1"}, small); err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(t, d, "x.jsonl"); err != nil || got != "ZERO\none\n" {
		t.Errorf("composed object %q (%v), want the parts in order", got, err)
	}
	var names []string
	for info, err := range d.List(ctx, jobs.ListQuery{Bucket: "b", Prefix: "x/", StartOffset: "x/part-0", EndOffset: "x/part-1"}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, info.Name)
	}
	if want := []string{"x/part-0"}; !slices.Equal(names, want) {
		t.Errorf("listed %q, want %q (prefix, inclusive start, exclusive end; no temporary files)", names, want)
	}
	if err := d.Delete(ctx, "b", "x/part-1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "b", "x/part-1"); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
	if _, err := readObject(t, d, "x/part-1"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("deleted object: read gives %v, want ErrNotFound", err)
	}
}
