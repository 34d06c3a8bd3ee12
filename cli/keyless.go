package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/linkissuer/linkissuer/sign/engine"
	"github.com/linkissuer/linkissuer/sign/iam"
)

// keylessFlags select signing through IAM Credentials signBlob, run by the
// batching engine (bounded concurrency, a rate that adapts to the quota,
// retries with backoff).
type keylessFlags struct {
	serviceAccount string
	delegates      stringList
	iamEndpoint    string
	keyless        bool
	inFlight       int
	ceiling        float64
}

func (k *keylessFlags) register(fs *flag.FlagSet, env Env) {
	fs.StringVar(&k.serviceAccount, "service-account", envString(env, "LINKISSUER_SERVICE_ACCOUNT", ""), "sign keyless as this service account through IAM signBlob (found from the metadata server or ADC when --keyless is given alone) [$LINKISSUER_SERVICE_ACCOUNT]")
	fs.BoolVar(&k.keyless, "keyless", envBool(env, "LINKISSUER_KEYLESS", false), "sign keyless through IAM signBlob as the ambient service account [$LINKISSUER_KEYLESS=true]")
	fs.Var(&k.delegates, "delegate", "service account in the impersonation chain (repeatable)")
	fs.StringVar(&k.iamEndpoint, "iam-endpoint", envString(env, "LINKISSUER_IAM_ENDPOINT", ""), "IAM Credentials endpoint, e.g. the emulator's http://127.0.0.1:PORT [$LINKISSUER_IAM_ENDPOINT]")
	fs.IntVar(&k.inFlight, "sign-in-flight", envInt(env, "LINKISSUER_SIGN_IN_FLIGHT", 0), "keyless: signBlob calls in flight (default 64) [$LINKISSUER_SIGN_IN_FLIGHT]")
	fs.Float64Var(&k.ceiling, "sign-rate-ceiling", envFloat(env, "LINKISSUER_SIGN_RATE_CEILING", 0), "keyless: cap on signBlob calls per second (default none: the rate adapts to the quota) [$LINKISSUER_SIGN_RATE_CEILING]")
}

func (k *keylessFlags) requested() bool {
	return k.serviceAccount != "" || k.keyless || k.iamEndpoint != ""
}

// loadKeyless builds the keyless signer: IAM signBlob behind the engine.
func loadKeyless(ctx context.Context, env Env, k *keylessFlags) (*credentials, error) {
	if !k.requested() {
		return nil, fmt.Errorf("no credentials: give --key-file, --hmac-access-id, or --service-account/--keyless for IAM signBlob")
	}
	if k.inFlight < 0 {
		return nil, fmt.Errorf("--sign-in-flight %d: must not be negative (0 is the default, 64)", k.inFlight)
	}
	if k.ceiling < 0 {
		return nil, fmt.Errorf("--sign-rate-ceiling %g: must not be negative (0 is no cap)", k.ceiling)
	}
	keyless, err := iam.NewSigner(ctx, iam.Options{
		Email:     k.serviceAccount,
		Delegates: k.delegates,
		Endpoint:  k.iamEndpoint,
	})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(keyless, &engine.Options{MaxInFlight: k.inFlight, Ceiling: k.ceiling})
	if err != nil {
		return nil, err
	}
	return &credentials{signer: eng, engine: eng, close: func() {}}, nil
}
