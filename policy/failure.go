package policy

import "github.com/linkissuer/linkissuer/failure"

// Failure implements failure.Classifier: a refusal is permanent, with code
// invalid_object_name for a name no rule may sign, dot_segment for a name
// with a "." or ".." segment, and policy_refused for everything else; Detail
// is the refusal's own Code.
func (r *Refusal) Failure() failure.Class {
	code := failure.CodePolicyRefused
	switch r.Code {
	case CodeInvalidObjectName:
		code = failure.CodeInvalidObjectName
	case CodeDotSegment:
		code = failure.CodeDotSegment
	}
	return failure.Class{Kind: failure.KindPermanent, Code: code, Detail: r.Code}
}
