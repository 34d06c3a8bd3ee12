package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// Refusal describes a durable-link click that was refused: the link
// authenticated, but no URL was signed (revoked, expired, or the
// revocation list could not be trusted).
type Refusal struct {
	// At is the time of the click.
	At         time.Time
	Bucket     string
	Object     string
	Generation int64
	Method     string
	// ExpiresAt is the durable link's own expiry.
	ExpiresAt time.Time
	// Reason is the record's reason ("revoked: token", "expired", ...).
	Reason string
	// Token is the durable link's token: only its SHA-256 is recorded.
	Token string
}

// Refuse writes the record of a refused click (outcome "refused"), with
// the Requester found in ctx. Its fingerprint is the SHA-256 of the
// token, so a durable link found in the wild can be looked up too. In
// fail-closed mode a sink failure is returned (wrapping ErrUnavailable);
// the click is refused either way.
func (r *Recorder) Refuse(ctx context.Context, f Refusal) error {
	if f.Token == "" || f.Reason == "" {
		return errors.New("audit: a refusal needs its token and reason")
	}
	who, _ := RequesterFrom(ctx)
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	sum := sha256.Sum256([]byte(f.Token))
	rec := &schema.AuditRecord{
		RecordID:       hex.EncodeToString(id),
		IssuedAt:       f.At.UTC(),
		Path:           who.Path,
		Outcome:        schema.OutcomeRefused,
		Reason:         f.Reason,
		Caller:         who.Caller,
		TokenID:        who.TokenID,
		Bucket:         f.Bucket,
		Object:         f.Object,
		Generation:     f.Generation,
		Method:         strings.ToUpper(f.Method),
		ExpiresAt:      f.ExpiresAt.UTC(),
		SignerIdentity: r.signer.Identity,
		SignerKind:     strings.ToLower(r.signer.Kind.String()),
		KeyID:          r.signer.KeyID,
		Fingerprint:    "sha256:" + hex.EncodeToString(sum[:]),
	}
	if rec.Path == "" {
		rec.Path = PathDurable
	}
	if err := r.sink.Write(ctx, rec); err != nil {
		if r.failClosed {
			return &sign.RetryableError{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
		}
		r.failures.Add(1)
		return nil
	}
	return nil
}
