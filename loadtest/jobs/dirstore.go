package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/linkissuer/linkissuer/blob"
	"github.com/linkissuer/linkissuer/jobs"
)

// dirStore is a jobs.Store on a local directory: bucket b, object o is the
// file ROOT/b/o. It is the manifest destination that does not dominate the
// measurement (fake-gcs-server recomputes the MD5 and CRC32C of the whole
// object at every resumable chunk, so a manifest of n chunks costs it
// O(n²)): the job's rows go through the same pieceWriter, in the same
// chunks, to the page cache.
//
// Objects appear whole at Close (a temporary file renamed, or hard-linked
// for IfAbsent, which fails if the name exists); cancelling the writer's
// ctx before Close abandons the write. It is not Versioned, so a finish
// lock is held for good by its first holder, as on any store without
// generations.
type dirStore struct {
	root string
}

var _ jobs.Store = dirStore{}

func (d dirStore) path(bucket, name string) (string, error) {
	if bucket == "" || strings.Contains(bucket, "/") || name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("dirstore: bad object %q/%q", bucket, name)
	}
	return filepath.Join(d.root, bucket, filepath.FromSlash(name)), nil
}

// NewWriter implements jobs.Store.
func (d dirStore) NewWriter(ctx context.Context, bucket, name string, o jobs.WriteOptions) io.WriteCloser {
	p, err := d.path(bucket, name)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(p), 0o755)
	}
	w := &dirWriter{ctx: ctx, dst: p, ifAbsent: o.IfAbsent, err: err}
	if err == nil {
		w.f, w.err = os.CreateTemp(filepath.Dir(p), ".tmp-*")
	}
	if w.err == nil {
		chunk := o.ChunkSize
		if chunk == 0 {
			chunk = blob.DefaultChunkSize
		}
		w.buf = bufio.NewWriterSize(w.f, chunk)
	}
	return w
}

type dirWriter struct {
	ctx      context.Context
	dst      string
	ifAbsent bool
	f        *os.File
	buf      *bufio.Writer
	err      error
}

func (w *dirWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.buf.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Close commits the object unless the writer's ctx is done or a write
// failed.
func (w *dirWriter) Close() error {
	if w.f == nil {
		return w.err
	}
	tmp := w.f.Name()
	defer os.Remove(tmp) // a no-op after a rename
	if w.err == nil {
		w.err = w.ctx.Err()
	}
	if w.err == nil {
		w.err = w.buf.Flush()
	}
	if err := w.f.Close(); w.err == nil {
		w.err = err
	}
	if w.err != nil {
		return w.err
	}
	if w.ifAbsent {
		if err := os.Link(tmp, w.dst); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return blob.MarkExists(err)
			}
			return err
		}
		return nil
	}
	return os.Rename(tmp, w.dst)
}

// NewReader implements jobs.Store.
func (d dirStore) NewReader(_ context.Context, bucket, name string) (io.ReadCloser, error) {
	p, err := d.path(bucket, name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, blob.MarkNotFound(err)
	}
	return f, err
}

// Compose implements jobs.Store by concatenation into a new file.
func (d dirStore) Compose(ctx context.Context, bucket, dst string, srcs []string, o jobs.WriteOptions) error {
	if len(srcs) == 0 || len(srcs) > jobs.MaxComposeSources {
		return fmt.Errorf("dirstore: compose of %d sources", len(srcs))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := d.NewWriter(wctx, bucket, dst, o)
	for _, s := range srcs {
		r, err := d.NewReader(ctx, bucket, s)
		if err != nil {
			cancel()
			w.Close()
			return err
		}
		_, err = io.Copy(w, r)
		r.Close()
		if err != nil {
			cancel()
			w.Close()
			return err
		}
	}
	return w.Close()
}

// Delete implements jobs.Store; a missing object is no error.
func (d dirStore) Delete(_ context.Context, bucket, name string) error {
	p, err := d.path(bucket, name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// List implements jobs.Lister: every file of the bucket, in name order
// (the store holds few objects: manifests, parts, markers).
func (d dirStore) List(_ context.Context, q jobs.ListQuery) iter.Seq2[jobs.ObjectInfo, error] {
	return func(yield func(jobs.ObjectInfo, error) bool) {
		root := filepath.Join(d.root, q.Bucket)
		var names []string
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == root {
					return blob.MarkNotFound(err)
				}
				return err
			}
			if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			yield(jobs.ObjectInfo{}, err)
			return
		}
		slices.Sort(names)
		for _, n := range names {
			if !strings.HasPrefix(n, q.Prefix) || n < q.StartOffset || (q.EndOffset != "" && n >= q.EndOffset) {
				continue
			}
			info := jobs.ObjectInfo{Name: n, Size: -1}
			if st, err := os.Stat(filepath.Join(root, filepath.FromSlash(n))); err == nil {
				info.Size, info.Updated = st.Size(), st.ModTime()
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}
