package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
)

// credFlags choose the signer: a key file, an HMAC key, or keyless (see
// config.Credentials).
type credFlags struct{ config.Credentials }

func (c *credFlags) register(fs *flag.FlagSet, env Env) { c.Credentials.Register(fs, env.Getenv) }

// credentials is the signer chosen from the flags, and how to release it.
type credentials struct {
	signer sign.Signer
	// engine is set for keyless signing, for its metrics.
	engine *engine.Engine
	close  func()
}

func fromApp(s *app.Signer) *credentials {
	return &credentials{signer: s.Signer, engine: s.Engine, close: s.Close}
}

// loadCredentials picks exactly one signer: an HMAC key, a key file, or
// keyless signing (app.NewSigner).
func loadCredentials(ctx context.Context, env Env, f *credFlags) (*credentials, error) {
	s, err := app.NewSigner(ctx, &f.Credentials, fleetLog(env))
	if err != nil {
		return nil, err
	}
	return fromApp(s), nil
}

// fleetLog is where a command without a service log reports a quota
// fleet's state changes (--quota-fleet): warnings, as JSON lines on stderr.
func fleetLog(env Env) *zap.Logger {
	log, err := logging.New(env.Stderr, "warn")
	if err != nil { // "warn" is a level: it cannot fail
		return zap.NewNop()
	}
	return log
}

// hmacSecret reads the secret from a file or $LINKISSUER_HMAC_SECRET; never
// from a flag value, which would show in process listings and shell history.
func hmacSecret(env Env, file string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--hmac-secret-file: %w", err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	if s := env.Getenv("LINKISSUER_HMAC_SECRET"); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("--hmac-access-id needs the secret in --hmac-secret-file or $LINKISSUER_HMAC_SECRET")
}
