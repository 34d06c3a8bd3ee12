// Package gcsfleet is the Cloud Storage driver of fleet.Store: each member
// is one empty object, PREFIX/members/ID, its numbers in the object's
// custom metadata, so that one objects.list call returns every member
// with its numbers and the update time GCS gave it.
//
// What it guarantees: Put is one single-request upload (a member object
// is written only by its own replica, at most once per fleet interval,
// within GCS's one mutation per second per object); it returns the update
// time GCS recorded. List is one listing of PREFIX/members/ (at most
// MaxMembers objects, else an error): objects there without a member's
// numbers are skipped. Delete of a missing object succeeds. Calls run
// under the caller's context and are not retried here (a fleet agent
// tries again at its next interval), except Delete, which is idempotent.
// The service account needs storage.objects.create, .list and .delete on
// the prefix (roles/storage.objectUser on the bucket, say); nothing here
// reads the environment: the caller builds the client.
package gcsfleet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/linkissuer/linkissuer/fleet"
)

// MaxMembers bounds a listing.
const MaxMembers = 1000

// membersDir is where the member objects live under the prefix.
const membersDir = "members/"

// Metadata keys of a member object.
const (
	keyAdmitted = "admitted"
	keyRefused  = "refused"
	keyRate     = "rate"
	keyEstimate = "estimate"
	keyQuota    = "quota"
	keyBinding  = "binding"
	keyWindowed = "windowed"
	keyQuotaAt  = "quota-at" // RFC 3339, when set
)

// Store is a fleet.Store under gs://Bucket/Prefix. It is safe for
// concurrent use.
type Store struct {
	client *storage.Client
	bucket string
	dir    string // Prefix + "members/"
}

var _ fleet.Store = (*Store)(nil)

// New returns the Store under gs://bucket/prefix on client. It does not
// take ownership of client: the caller closes it.
func New(client *storage.Client, bucket, prefix string) *Store {
	return &Store{client: client, bucket: bucket, dir: normalizePrefix(prefix) + membersDir}
}

// ParseURL splits gs://BUCKET[/PREFIX] into the bucket and the prefix
// (empty, or ending in "/"). It is pure.
func ParseURL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "gs://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	switch {
	case !ok:
		return "", "", fmt.Errorf("%q is not gs://BUCKET/PREFIX", u)
	case !validBucket(bucket):
		return "", "", fmt.Errorf("%q: %q is not a bucket name", u, bucket)
	case strings.Contains(prefix, "//") || strings.ContainsAny(prefix, "\r\n#[]*?") || len(prefix) > 512:
		return "", "", fmt.Errorf("%q: the prefix must be a plain object path (no //, newlines, # [ ] * ?; at most 512 bytes)", u)
	}
	return bucket, normalizePrefix(prefix), nil
}

// validBucket is GCS's naming rule in short: 3-63 characters (222 with
// dots) of lowercase letters, digits, -, _ and ., starting and ending
// with a letter or digit.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 222 || (len(b) > 63 && !strings.Contains(b, ".")) {
		return false
	}
	for i, c := range b {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(b)-1 || !strings.ContainsRune("-_.", c)) {
			return false
		}
	}
	return true
}

func normalizePrefix(p string) string {
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// String is the store's location, gs://BUCKET/PREFIX/members/.
func (s *Store) String() string { return "gs://" + s.bucket + "/" + s.dir }

func (s *Store) object(id string) (*storage.ObjectHandle, error) {
	if id == "" || strings.ContainsAny(id, "/\r\n") || len(id) > 256 {
		return nil, fmt.Errorf("gcsfleet: %q is not a member ID (1-256 bytes, no / or newline)", id)
	}
	return s.client.Bucket(s.bucket).Object(s.dir + id), nil
}

// Put implements fleet.Store: it writes m's object and returns the update
// time GCS gave it.
func (s *Store) Put(ctx context.Context, m fleet.Member) (time.Time, error) {
	o, err := s.object(m.ID)
	if err != nil {
		return time.Time{}, err
	}
	w := o.NewWriter(ctx)
	w.ChunkSize = 0 // one request: the object is empty
	w.ContentType = "application/octet-stream"
	w.CacheControl = "no-store"
	w.Metadata = encode(m)
	if err := w.Close(); err != nil {
		return time.Time{}, fmt.Errorf("gcsfleet: write gs://%s/%s: %w", s.bucket, s.dir+m.ID, err)
	}
	return w.Attrs().Updated, nil
}

// List implements fleet.Store: one listing of the members' objects.
func (s *Store) List(ctx context.Context) ([]fleet.Member, error) {
	q := &storage.Query{Prefix: s.dir, Projection: storage.ProjectionNoACL}
	if err := q.SetAttrSelection([]string{"Name", "Updated", "Metadata"}); err != nil {
		return nil, fmt.Errorf("gcsfleet: list %s: %w", s, err)
	}
	it := s.client.Bucket(s.bucket).Objects(ctx, q)
	it.PageInfo().MaxSize = MaxMembers
	var members []fleet.Member
	for n := 0; ; n++ {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return members, nil
		}
		if err != nil {
			return nil, fmt.Errorf("gcsfleet: list %s: %w", s, err)
		}
		if n >= MaxMembers {
			return nil, fmt.Errorf("gcsfleet: list %s: more than %d objects", s, MaxMembers)
		}
		id := strings.TrimPrefix(a.Name, s.dir)
		if m, ok := decode(id, a.Metadata); ok && !strings.Contains(id, "/") {
			m.Updated = a.Updated
			members = append(members, m)
		}
	}
}

// Delete implements fleet.Store; a missing object is no error.
func (s *Store) Delete(ctx context.Context, id string) error {
	o, err := s.object(id)
	if err != nil {
		return err
	}
	err = o.Retryer(storage.WithPolicy(storage.RetryAlways)).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("gcsfleet: delete gs://%s/%s: %w", s.bucket, s.dir+id, err)
	}
	return nil
}

// probeDeleteTimeout bounds Probe's delete, which does not end with the
// caller's context.
const probeDeleteTimeout = 10 * time.Second

// Probe checks that the prefix can be written, listed and deleted, as a
// member does: it writes a member object id with no calls (idle, not
// binding: it asks the others for next to nothing, and only for the
// moment it exists), lists the members and looks for it, and deletes it.
// The delete runs whatever the earlier steps returned, under a context
// of its own (ctx's values without its deadline, bounded by ten seconds)
// so that a step that ran out of time leaves no probe object behind; its
// error is reported with theirs.
func (s *Store) Probe(ctx context.Context, id string) (err error) {
	if _, err := s.object(id); err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeDeleteTimeout)
		defer cancel()
		if derr := s.Delete(dctx, id); derr != nil {
			if err == nil {
				err = derr
			} else {
				err = fmt.Errorf("%w; and the probe object was not deleted: %w", err, derr)
			}
		}
	}()
	if _, err := s.Put(ctx, fleet.Member{ID: id}); err != nil {
		return err
	}
	members, err := s.List(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.ID == id {
			return nil
		}
	}
	return fmt.Errorf("gcsfleet: list %s: the probe object %s just written is not listed", s, id)
}

// encode is m's numbers as custom metadata (ID and Updated are the
// object's name and update time).
func encode(m fleet.Member) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	md := map[string]string{
		keyAdmitted: f(m.Admitted), keyRefused: f(m.Refused), keyRate: f(m.Rate),
		keyEstimate: f(m.Estimate), keyQuota: f(m.Quota),
		keyBinding: strconv.FormatBool(m.Binding), keyWindowed: strconv.FormatBool(m.Windowed),
	}
	if !m.QuotaAt.IsZero() {
		md[keyQuotaAt] = m.QuotaAt.UTC().Format(time.RFC3339Nano)
	}
	return md
}

// decode reads a member's numbers back; ok is false if any is missing or
// malformed (the object is not a member).
func decode(id string, md map[string]string) (m fleet.Member, ok bool) {
	m.ID = id
	var err error
	num := func(key string) float64 {
		v, e := strconv.ParseFloat(md[key], 64)
		if e == nil && !(v >= 0 && !math.IsInf(v, 0)) {
			e = fmt.Errorf("%s: %g", key, v)
		}
		err = errors.Join(err, e)
		return v
	}
	flag := func(key string) bool {
		v, e := strconv.ParseBool(md[key])
		err = errors.Join(err, e)
		return v
	}
	m.Admitted, m.Refused, m.Rate = num(keyAdmitted), num(keyRefused), num(keyRate)
	m.Estimate, m.Quota = num(keyEstimate), num(keyQuota)
	m.Binding, m.Windowed = flag(keyBinding), flag(keyWindowed)
	if v, ok := md[keyQuotaAt]; ok {
		var e error
		m.QuotaAt, e = time.Parse(time.RFC3339Nano, v)
		err = errors.Join(err, e)
	}
	return m, err == nil && id != ""
}
