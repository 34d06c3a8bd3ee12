package preflight

import (
	"context"
	"fmt"
	"net/http"

	"cloud.google.com/go/compute/metadata"
)

// Reachable checks that endpoint answers HTTP at all (any status): the
// network path, DNS and TLS to it work. what names it for the fix.
func Reachable(client *http.Client, what, endpoint string) Check {
	return Check{
		Name: what + " reachable at " + endpoint,
		Run: func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return Fixf(fmt.Errorf("%s does not answer: %w", what, err),
					"enable the API (gcloud services enable iamcredentials.googleapis.com), and allow egress to it (VPC-SC, firewall, proxy)")
			}
			resp.Body.Close()
			return nil
		},
	}
}

// AccountSource says which service account the process runs as.
type AccountSource interface {
	// Account returns the email, or a Skipped error where there is no
	// source (not on Google Cloud).
	Account(ctx context.Context) (string, error)
}

// RuntimeAccount checks that the runtime account's email resolves; found
// receives it, for the fixes of later checks.
func RuntimeAccount(src AccountSource, found *string) Check {
	return Check{
		Name: "runtime service account from the metadata server",
		Run: func(ctx context.Context) error {
			email, err := src.Account(ctx)
			if err != nil {
				if _, skip := err.(*Skipped); skip {
					return err
				}
				return Fixf(fmt.Errorf("the metadata server did not give the account's email: %w", err),
					"run as a service account (Cloud Run --service-account, GKE Workload Identity), or name the signer with --service-account")
			}
			*found = email
			return nil
		},
	}
}

// Metadata is the GCE metadata server ($GCE_METADATA_HOST overrides where).
type Metadata struct{}

// Account implements AccountSource.
func (Metadata) Account(ctx context.Context) (string, error) {
	if !metadata.OnGCEWithContext(ctx) {
		return "", Skipf("not on Google Cloud (no metadata server)")
	}
	return metadata.EmailWithContext(ctx, "default")
}
