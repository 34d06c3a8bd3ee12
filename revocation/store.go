package revocation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
)

// ErrNoList is what Store's errors match when the list object does not
// exist (create it with Init).
var ErrNoList = errors.New("revocation: no list")

// ErrConflict is what Update's error matches when other writers won every
// attempt.
var ErrConflict = errors.New("revocation: the list kept changing under the write")

// Store is one list object in Cloud Storage.
type Store struct {
	obj  *storage.ObjectHandle
	name string
	// Attempts bounds Update's read-modify-write rounds (default 20).
	Attempts int
}

// NewStore returns the Store of gs://bucket/object on client.
func NewStore(client *storage.Client, bucket, object string) *Store {
	return &Store{obj: client.Bucket(bucket).Object(object), name: "gs://" + bucket + "/" + object}
}

// ParseURL splits gs://BUCKET/OBJECT.
func ParseURL(u string) (bucket, object string, err error) {
	rest, ok := strings.CutPrefix(u, "gs://")
	bucket, object, _ = strings.Cut(rest, "/")
	if !ok || validBucket(bucket) != nil || object == "" {
		return "", "", fmt.Errorf("%q is not gs://BUCKET/OBJECT", u)
	}
	return bucket, object, nil
}

// String is the list's gs:// URL.
func (s *Store) String() string { return s.name }

// Generation returns the list object's generation (metadata only).
func (s *Store) Generation(ctx context.Context) (int64, error) {
	a, err := s.obj.Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return 0, fmt.Errorf("%w at %s", ErrNoList, s.name)
	}
	if err != nil {
		return 0, fmt.Errorf("revocation: %s: %w", s.name, err)
	}
	return a.Generation, nil
}

// Read returns the list and its generation.
func (s *Store) Read(ctx context.Context) (*List, int64, error) {
	r, err := s.obj.NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, 0, fmt.Errorf("%w at %s", ErrNoList, s.name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("revocation: read %s: %w", s.name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("revocation: read %s: %w", s.name, err)
	}
	l, err := Parse(data)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", s.name, err)
	}
	return l, r.Attrs.Generation, nil
}

// write stores l if the object's generation is still gen (0: if it does
// not exist yet) and returns the new generation.
func (s *Store) write(ctx context.Context, l *List, gen int64) (int64, error) {
	data, err := l.Marshal()
	if err != nil {
		return 0, err
	}
	if len(data) > MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(data), MaxBytes)
	}
	cond := storage.Conditions{GenerationMatch: gen}
	if gen == 0 {
		cond = storage.Conditions{DoesNotExist: true}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := s.obj.If(cond).NewWriter(ctx)
	w.ContentType = "application/json"
	w.CacheControl = "no-store"
	w.ChunkSize = 0 // one request: the precondition applies to it
	if _, err := w.Write(data); err != nil {
		return 0, fmt.Errorf("revocation: write %s: %w", s.name, err)
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("revocation: write %s: %w", s.name, err)
	}
	return w.Attrs().Generation, nil
}

// IsPrecondition reports a failed ifGenerationMatch.
func isPrecondition(err error) bool {
	var g *googleapi.Error
	return errors.As(err, &g) && g.Code == http.StatusPreconditionFailed
}

// Init creates an empty list unless one exists; created says which.
func (s *Store) Init(ctx context.Context, now time.Time) (created bool, err error) {
	_, err = s.write(ctx, &List{Version: Version, Updated: now.UTC().Truncate(time.Second)}, 0)
	if isPrecondition(err) {
		return false, nil
	}
	return err == nil, err
}

// Update applies change to the stored list with a generation-checked
// write, re-reading and retrying when another writer got there first, and
// returns the list written (or unchanged) and its generation. change must
// be idempotent: it runs once per attempt on a freshly read list.
func (s *Store) Update(ctx context.Context, change func(*List) (bool, error)) (*List, int64, error) {
	attempts := s.Attempts
	if attempts <= 0 {
		attempts = 20
	}
	for i := range attempts {
		l, gen, err := s.Read(ctx)
		if err != nil {
			return nil, 0, err
		}
		changed, err := change(l)
		if err != nil {
			return nil, 0, err
		}
		if !changed {
			return l, gen, nil
		}
		ngen, err := s.write(ctx, l, gen)
		if err == nil {
			return l, ngen, nil
		}
		if !isPrecondition(err) {
			return nil, 0, err
		}
		// Another writer won: back off with jitter, then start over.
		d := time.Duration(10<<min(i, 6)) * time.Millisecond
		select {
		case <-time.After(d/2 + rand.N(d)):
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return nil, 0, fmt.Errorf("%w (%s, %d attempts)", ErrConflict, s.name, attempts)
}
