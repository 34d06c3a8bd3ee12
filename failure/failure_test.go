package failure_test

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"strings"
	"testing"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	storage503 := failure.Transient(failure.Storage, errors.New("503 from the store"))
	tests := []struct {
		name       string
		err        error
		want       failure.Class
		wantReason string
	}{
		{name: "nil", err: nil, want: failure.Class{}, wantReason: ""},
		{name: "permanent", err: failure.Permanent(failure.CodeInvalidField, errors.New("bad")),
			want: failure.Class{Kind: failure.KindPermanent, Code: failure.CodeInvalidField}, wantReason: "invalid_field"},
		{name: "permanent without a code", err: failure.Permanent("", errors.New("bad")),
			want: failure.Class{Kind: failure.KindPermanent, Code: failure.CodeInternal}, wantReason: "internal"},
		{name: "ignored", err: failure.Ignore("metadata_update"),
			want: failure.Class{Kind: failure.KindIgnored, Code: "metadata_update"}, wantReason: "metadata_update"},
		{name: "storage outage", err: fmt.Errorf("list: %w", storage503),
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Storage}, wantReason: "storage_unavailable"},
		{name: "publisher", err: failure.Transient(failure.Publisher, errors.New("x")),
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Publisher}, wantReason: "publish_failed"},
		{name: "dead letter", err: failure.Transient(failure.DeadLetter, errors.New("x")),
			want: failure.Class{Kind: failure.KindTransient, Component: failure.DeadLetter}, wantReason: "dead_letter_publish_failed"},
		{name: "transient without a component", err: failure.Transient("", errors.New("x")),
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Unknown}, wantReason: "transient"},
		{name: "unclassified", err: errors.New("boom"),
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Unknown}, wantReason: "transient"},
		{name: "cancelled", err: fmt.Errorf("sign: %w", context.Canceled),
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Canceled}, wantReason: "cancelled"},
		{name: "deadline", err: context.DeadlineExceeded,
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Canceled}, wantReason: "cancelled"},
		{name: "outermost wins: a storage outage cut by its context", err: failure.Transient(failure.Storage, context.DeadlineExceeded),
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Storage}, wantReason: "storage_unavailable"},
		{name: "outermost wins: permanent around an outage", err: failure.Permanent(failure.CodeInvalidField, storage503),
			want: failure.Class{Kind: failure.KindPermanent, Code: failure.CodeInvalidField}, wantReason: "invalid_field"},

		// Domain errors classify themselves.
		{name: "schema field error", err: fmt.Errorf("parse: %w", &schema.FieldError{Field: "data", Reason: "x", Code: schema.CodeInvalidJSON}),
			want: failure.Class{Kind: failure.KindPermanent, Code: failure.CodeInvalidJSON}, wantReason: "invalid_json"},
		{name: "bare schema.ErrInvalid", err: fmt.Errorf("x: %w", schema.ErrInvalid),
			want: failure.Class{Kind: failure.KindPermanent, Code: failure.CodeInvalidField}, wantReason: "invalid_field"},
		{name: "policy refusal", err: &policy.Refusal{Code: policy.CodeBucketNotAllowed, Reason: "no"},
			want: failure.Class{Kind: failure.KindPermanent, Code: failure.CodePolicyRefused, Detail: policy.CodeBucketNotAllowed}, wantReason: "policy_refused"},
		{name: "policy refusal of a name", err: &policy.Refusal{Code: policy.CodeInvalidObjectName, Reason: "CR"},
			want: failure.Class{Kind: failure.KindPermanent, Code: failure.CodeInvalidObjectName, Detail: policy.CodeInvalidObjectName}, wantReason: "invalid_object_name"},
		{name: "signer input", err: &sign.InputError{Field: "object", Reason: "too long"},
			want: failure.Class{Kind: failure.KindPermanent, Code: failure.CodeSignRefused}, wantReason: "sign_refused"},
		{name: "signer throttled", err: &sign.RetryableError{Err: errors.New("429")},
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Signer}, wantReason: "signer_unavailable"},
		{name: "signing engine gave up", err: fmt.Errorf("sign: %w", &engine.GiveUpError{Attempts: 5, Err: errors.New("signBlob: 503")}),
			want: failure.Class{Kind: failure.KindTransient, Component: failure.Signer}, wantReason: "signer_unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := failure.Classify(tc.err)
			if got != tc.want {
				t.Errorf("Classify(%v) = %+v, want %+v", tc.err, got, tc.want)
			}
			if r := got.Reason(); r != tc.wantReason {
				t.Errorf("Classify(%v).Reason() = %q, want %q", tc.err, r, tc.wantReason)
			}
		})
	}
}

func TestIsTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "marked", err: fmt.Errorf("x: %w", failure.Transient(failure.Storage, errors.New("503"))), want: true},
		{name: "signer retryable", err: &sign.RetryableError{Err: errors.New("503")}, want: true},
		{name: "unclassified is not marked", err: errors.New("boom"), want: false},
		{name: "context is not marked", err: context.Canceled, want: false},
		{name: "permanent", err: failure.Permanent(failure.CodeInternal, errors.New("x")), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := failure.IsTransient(tc.err); got != tc.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestWrappersKeepTheCause checks that marking an error keeps errors.Is and
// the message.
func TestWrappersKeepTheCause(t *testing.T) {
	t.Parallel()
	cause := errors.New("the cause")
	for _, err := range []error{failure.Permanent(failure.CodeInternal, cause), failure.Transient(failure.Signer, cause)} {
		if !errors.Is(err, cause) || err.Error() != "the cause" {
			t.Errorf("%T: errors.Is = %v, text %q", err, errors.Is(err, cause), err.Error())
		}
	}
	if got := failure.Ignore("object_deleted").Error(); got != "ignored: object_deleted" {
		t.Errorf("Ignore text = %q", got)
	}
}

// TestLeaf keeps the taxonomy importable by every layer: the package imports
// nothing but the standard library.
func TestLeaf(t *testing.T) {
	t.Parallel()
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("failure imports %s; it may import only the standard library", imp)
		}
	}
}
