package preflight

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

// Signer is what the signer check needs.
type Signer interface {
	Credential() sign.Credential
	Sign(ctx context.Context, scope sign.Scope, stringToSign []byte) ([]byte, error)
}

// probePayload is the fixed payload the signer check signs: not a URL, so
// the signature grants nothing.
const probePayload = "linkissuer preflight: this signature grants nothing"

// Signs checks that s produces a signature, one signBlob call for a keyless
// signer. runtime, if not nil, holds the account the process runs as when
// the check runs (RuntimeAccount fills it), for the fix.
func Signs(s Signer, runtime *string) Check {
	c := s.Credential()
	return Check{
		Name: "signer " + c.Identity + " signs",
		Run: func(ctx context.Context) error {
			sig, err := s.Sign(ctx, sign.NewScope(sign.GOOG4, time.Now(), "auto"), []byte(probePayload))
			if err == nil && len(sig) == 0 {
				err = errors.New("empty signature")
			}
			if err == nil {
				return nil
			}
			err = fmt.Errorf("cannot sign as %s: %w", c.Identity, err)
			if !c.Keyless {
				return Fixf(err, "check the key (--key-file, --hmac-access-id) belongs to %s and is not disabled", c.Identity)
			}
			account, member := "the runtime service account", "RUNTIME"
			if runtime != nil && *runtime != "" {
				account, member = *runtime, *runtime
			}
			return Fixf(err, "grant roles/iam.serviceAccountTokenCreator on %s to %s (gcloud iam service-accounts add-iam-policy-binding %s --member=serviceAccount:%s --role=roles/iam.serviceAccountTokenCreator), and enable iamcredentials.googleapis.com",
				c.Identity, account, c.Identity, member)
		},
	}
}
