package cli

import (
	"context"
	"flag"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/config"
)

// keylessFlags select signing through IAM Credentials signBlob, run by the
// batching engine (see config.Keyless).
type keylessFlags struct{ config.Keyless }

func (k *keylessFlags) register(fs *flag.FlagSet, env Env) { k.Keyless.Register(fs, env.Getenv) }

func (k *keylessFlags) requested() bool { return k.Requested() }

// loadKeyless builds the keyless signer: IAM signBlob behind the engine.
func loadKeyless(ctx context.Context, env Env, k *keylessFlags) (*credentials, error) {
	s, err := app.NewKeylessSigner(ctx, &k.Keyless, fleetLog(env))
	if err != nil {
		return nil, err
	}
	return fromApp(s), nil
}
