package sign

import (
	"context"
	"fmt"
	"time"
)

// Kind is the signature family a Signer produces.
type Kind int

const (
	// KindRSA signs with RSASSA-PKCS1-v1_5 over SHA-256 (a service-account
	// key, or IAM Credentials signBlob).
	KindRSA Kind = iota + 1
	// KindHMAC signs with HMAC-SHA256 using a key derived from a secret and
	// the credential scope.
	KindHMAC
)

func (k Kind) String() string {
	switch k {
	case KindRSA:
		return "RSA"
	case KindHMAC:
		return "HMAC"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Credential describes who signs: the identity that goes into the
// X-Goog-Credential / X-Amz-Credential parameter and the signature family.
type Credential struct {
	// Identity is a service-account email (RSA) or an HMAC access ID.
	Identity string
	// Kind is the signature family.
	Kind Kind
	// Keyless reports that signatures come from a remote, system-managed key
	// (IAM Credentials signBlob), which is only guaranteed for 12 hours.
	Keyless bool
}

// Signer turns a V4 string-to-sign into raw signature bytes.
//
// Implementations must be safe for concurrent use. Sign may block (a remote
// signer makes a network call) and must honour ctx. Errors that a caller may
// retry should satisfy IsRetryable.
type Signer interface {
	// Credential describes the signer; it must not change over its lifetime.
	Credential() Credential
	// Sign signs stringToSign, which it must not modify or keep. scope is
	// the credential scope the string was built for: HMAC signers derive
	// their key from it, RSA signers ignore it.
	Sign(ctx context.Context, scope Scope, stringToSign []byte) ([]byte, error)
}

// AppendSigner is a Signer that appends the raw signature to dst instead of
// allocating it. URLSigner uses it to write a signature straight into the
// link; HMACSigner implements it.
type AppendSigner interface {
	Signer
	AppendSign(ctx context.Context, dst []byte, scope Scope, stringToSign []byte) ([]byte, error)
}

// Dialect selects the V4 flavour: parameter prefix, scope service and
// terminator.
type Dialect int

const (
	// GOOG4 is Google Cloud Storage's dialect: X-Goog-* parameters, scope
	// DATE/REGION/storage/goog4_request.
	GOOG4 Dialect = iota
	// AWS4 is the S3 dialect: X-Amz-* parameters, scope
	// DATE/REGION/s3/aws4_request.
	AWS4
)

func (d Dialect) String() string {
	if d == AWS4 {
		return "AWS4"
	}
	return "GOOG4"
}

// paramPrefix is the prefix of the signing query parameters.
func (d Dialect) paramPrefix() string {
	if d == AWS4 {
		return "X-Amz-"
	}
	return "X-Goog-"
}

// Algorithm returns the algorithm name for a signer of kind k, or an error
// when the combination does not exist (RSA has no AWS4 form).
func (d Dialect) Algorithm(k Kind) (string, error) {
	switch {
	case d == GOOG4 && k == KindRSA:
		return "GOOG4-RSA-SHA256", nil
	case d == GOOG4 && k == KindHMAC:
		return "GOOG4-HMAC-SHA256", nil
	case d == AWS4 && k == KindHMAC:
		return "AWS4-HMAC-SHA256", nil
	}
	return "", &InputError{Field: "signer", Reason: fmt.Sprintf("%s signing is not available in the %s dialect", k, d)}
}

// Scope is a V4 credential scope: DATE/REGION/SERVICE/TERMINATOR.
type Scope struct {
	Dialect Dialect
	// Date is the signing date as YYYYMMDD (UTC).
	Date string
	// Region is "auto" for GCS unless told otherwise; an AWS region for S3.
	Region string
}

// NewScope returns the scope for signing time t in region.
func NewScope(d Dialect, t time.Time, region string) Scope {
	return Scope{Dialect: d, Date: t.UTC().Format(dateFormat), Region: region}
}

// Service is "storage" for GOOG4 and "s3" for AWS4.
func (s Scope) Service() string {
	if s.Dialect == AWS4 {
		return "s3"
	}
	return "storage"
}

// Terminator is "goog4_request" or "aws4_request".
func (s Scope) Terminator() string {
	if s.Dialect == AWS4 {
		return "aws4_request"
	}
	return "goog4_request"
}

// String renders the scope as it appears in the credential and string-to-sign.
func (s Scope) String() string {
	return s.Date + "/" + s.Region + "/" + s.Service() + "/" + s.Terminator()
}

const (
	dateFormat     = "20060102"
	dateTimeFormat = "20060102T150405Z"
)
