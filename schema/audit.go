package schema

import "time"

// AuditV1 is the schema attribute value of an audit record.
const AuditV1 = "linkissuer.audit.v1"

// Audit outcomes.
const (
	// OutcomeIssued: the link was released to the requester.
	OutcomeIssued = "issued"
	// OutcomeRefused: a durable-link click was refused (revoked, expired).
	OutcomeRefused = "refused"
	// OutcomeMinted: a durable link was created and released to the
	// requester (POST /v1/durable-links); no URL was signed yet.
	OutcomeMinted = "minted"
)

// AuditRecord is a linkissuer.audit.v1 message: one issued link (or one
// durable link's creation or refused click) accounted for, without the
// credential. It never carries the URL or its signature;
// Fingerprint (see audit.Fingerprint) identifies the URL instead, so that
// a link found in the wild can be looked up. The fields are flat so that a
// Pub/Sub BigQuery subscription writes them to columns of the same names.
type AuditRecord struct {
	// RecordID identifies the record (hex); a redelivered event that is
	// signed again gets a new record and a new fingerprint.
	RecordID string `json:"record_id"`
	// IssuedAt is the signing time (X-Goog-Date), RFC 3339; for a durable
	// link's token, the time of its creation or of the refused click.
	IssuedAt time.Time `json:"issued_at"`
	// Path is what asked: "event", "sync", "job", "durable" or "cli".
	Path string `json:"path"`
	// Outcome is OutcomeIssued, OutcomeMinted for a durable link's
	// creation, or OutcomeRefused for a refused click.
	Outcome string `json:"outcome"`
	// Reason says why a click was refused ("revoked: token", "expired",
	// "revocations_unavailable"); empty for issued links.
	Reason string `json:"reason,omitempty"`
	// Caller is the verified identity of the API caller (push, sync or
	// durable-link token email), when there is one; a click on a durable
	// link has "durable:" and the token id, the sign CLI its user.
	Caller string `json:"caller,omitempty"`
	// CallerSubject and CallerIssuer are the sub and iss claims of the
	// caller's verified ID token: the account's stable id, which outlives
	// its email (an account deleted and created again gets a new one).
	CallerSubject string `json:"caller_subject,omitempty"`
	CallerIssuer  string `json:"caller_issuer,omitempty"`
	Subscription  string `json:"subscription,omitempty"`
	// MessageID is the event's (or the job message's) id, or the sync
	// request's "sync-..." id; source_ because a BigQuery subscription
	// writes the audit message's own id as message_id.
	MessageID string `json:"source_message_id,omitempty"`
	JobID     string `json:"job_id,omitempty"`
	// Submitter is the job's submitter (job.v1 submitter) for job rows:
	// what the job message claims, not a verified identity.
	Submitter string `json:"submitter,omitempty"`
	// TokenID is the durable link's id, for its creation and its clicks.
	TokenID string `json:"token_id,omitempty"`

	Bucket     string `json:"bucket"`
	Object     string `json:"object"`
	Generation int64  `json:"generation"`
	Method     string `json:"method"`
	// SignedHeaders are the names of the headers signed in (host included).
	SignedHeaders []string `json:"signed_headers,omitempty"`
	// ResponseParams are the query parameters signed in besides the
	// signing ones (response-*, generation).
	ResponseParams []AuditParam `json:"response_params,omitempty"`
	// ExpiresAt is the signed URL's expiry, or the durable link's own for
	// records of a durable link's token (minted, refused).
	ExpiresAt time.Time `json:"expires_at"`

	// SignerIdentity is the service-account email or HMAC access ID;
	// SignerKind "rsa" or "hmac"; KeyID the key file's private_key_id when
	// known. For a durable link's token they name the signer of its
	// clicks.
	SignerIdentity string `json:"signer_identity"`
	SignerKind     string `json:"signer_kind"`
	KeyID          string `json:"key_id,omitempty"`
	// Fingerprint is "sha256:" and the hex SHA-256 of the URL with its
	// signature parameter removed; for a durable link's creation and a
	// refused click (no URL was signed) the hex SHA-256 of its token
	// (audit.TokenFingerprint).
	Fingerprint string `json:"fingerprint"`
}

// AuditParam is one signed query parameter.
type AuditParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Data is r's message data: compact JSON without HTML escaping.
func (r *AuditRecord) Data() ([]byte, error) { return marshal(r) }

// Attributes are r's Pub/Sub attributes.
func (r *AuditRecord) Attributes() map[string]string {
	return map[string]string{AttrSchema: AuditV1, AttrBucket: r.Bucket, AttrMethod: r.Method}
}
