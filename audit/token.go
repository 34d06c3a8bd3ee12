package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// Minting describes a durable link just minted: what its clicks will be
// signed for, until when, and its token. No URL is signed yet.
type Minting struct {
	// At is the minting time (the token's issue time).
	At         time.Time
	Bucket     string
	Object     string
	Generation int64
	Method     string
	// ResponseParams are signed into every URL the link redirects to.
	ResponseParams []sign.Param
	// ExpiresAt is the durable link's own expiry.
	ExpiresAt time.Time
	// Token is the durable link's token: only its SHA-256 is recorded.
	Token string
}

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

// Mint writes the record of a minted durable link (outcome "minted"),
// with the Requester found in ctx (its caller is who asked for the link).
// Like a link's record, in fail-closed mode it returns once the sink has
// the record, or with an error matching ErrUnavailable, and the durable
// link must then be withheld; in fail-open mode it queues the record and
// returns nil.
func (r *Recorder) Mint(ctx context.Context, m Minting) error {
	if m.Token == "" {
		return errors.New("audit: a minting needs its token")
	}
	rec := r.tokenRecord(ctx, schema.OutcomeMinted, m.Token)
	rec.IssuedAt = m.At.UTC()
	rec.Bucket, rec.Object, rec.Generation = m.Bucket, m.Object, m.Generation
	rec.Method = strings.ToUpper(m.Method)
	rec.ResponseParams = auditParams(m.ResponseParams)
	rec.ExpiresAt = m.ExpiresAt.UTC()
	return r.begin(ctx, rec)(ctx)
}

// Refuse writes the record of a refused click (outcome "refused"), with
// the Requester found in ctx, as Mint writes a minting: fail-closed it
// waits and returns an error matching ErrUnavailable when the sink did
// not take the record; fail-open it queues it. The click is refused
// either way.
func (r *Recorder) Refuse(ctx context.Context, f Refusal) error {
	if f.Token == "" || f.Reason == "" {
		return errors.New("audit: a refusal needs its token and reason")
	}
	rec := r.tokenRecord(ctx, schema.OutcomeRefused, f.Token)
	rec.IssuedAt = f.At.UTC()
	rec.Reason = f.Reason
	rec.Bucket, rec.Object, rec.Generation = f.Bucket, f.Object, f.Generation
	rec.Method = strings.ToUpper(f.Method)
	rec.ExpiresAt = f.ExpiresAt.UTC()
	return r.begin(ctx, rec)(ctx)
}

// tokenRecord starts the record of a durable link's token: no URL was
// signed, so its fingerprint is TokenFingerprint(token), and a durable
// link found in the wild can be looked up too.
func (r *Recorder) tokenRecord(ctx context.Context, outcome, token string) *schema.AuditRecord {
	rec := r.newRecord(ctx, PathDurable)
	rec.Outcome = outcome
	rec.Fingerprint = TokenFingerprint(token)
	return rec
}

// TokenFingerprint identifies a durable link's token without keeping it:
// "sha256:" and the lower-case hex SHA-256 of the token (the part of
// https://HOST/l/TOKEN after /l/).
func TokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}
