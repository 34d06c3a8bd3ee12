package cli

import (
	"context"
	"fmt"
)

// loadKeyless builds the keyless signer. It is wired to the IAM signer and
// batching engine once those land.
func loadKeyless(ctx context.Context, env Env, k *keylessFlags) (*credentials, error) {
	return nil, fmt.Errorf("no credentials: give --key-file or --hmac-access-id (keyless --service-account signing is not wired yet)")
}
