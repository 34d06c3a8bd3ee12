package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
)

// credFlags choose the signer: a key file, an HMAC key, or keyless.
type credFlags struct {
	keyFile        string
	email          string
	hmacAccessID   string
	hmacSecretFile string
	keyless        keylessFlags
}

func (c *credFlags) register(fs *flag.FlagSet, env Env) {
	fs.StringVar(&c.keyFile, "key-file", envString(env, "LINKISSUER_KEY_FILE", ""), "service-account key file (JSON or PEM) for GOOG4-RSA-SHA256 [$LINKISSUER_KEY_FILE]")
	fs.StringVar(&c.email, "email", envString(env, "LINKISSUER_KEY_EMAIL", ""), "service-account email for a PEM key file (JSON files carry their own) [$LINKISSUER_KEY_EMAIL]")
	fs.StringVar(&c.hmacAccessID, "hmac-access-id", envString(env, "LINKISSUER_HMAC_ACCESS_ID", ""), "HMAC access ID; the secret comes from --hmac-secret-file or $LINKISSUER_HMAC_SECRET [$LINKISSUER_HMAC_ACCESS_ID]")
	fs.StringVar(&c.hmacSecretFile, "hmac-secret-file", envString(env, "LINKISSUER_HMAC_SECRET_FILE", ""), "file holding the HMAC secret [$LINKISSUER_HMAC_SECRET_FILE]")
	c.keyless.register(fs, env)
}

// credentials is the signer chosen from the flags, and how to release it.
type credentials struct {
	signer sign.Signer
	// engine is set for keyless signing, for its metrics.
	engine *engine.Engine
	close  func()
}

// loadCredentials picks exactly one signer: an HMAC key, a key file, or
// keyless signing.
func loadCredentials(ctx context.Context, env Env, f *credFlags) (*credentials, error) {
	chosen := 0
	for _, set := range []bool{f.hmacAccessID != "", f.keyFile != "", f.keyless.requested()} {
		if set {
			chosen++
		}
	}
	if chosen > 1 {
		return nil, fmt.Errorf("choose one of --hmac-access-id, --key-file and --service-account")
	}
	switch {
	case f.hmacAccessID != "":
		secret, err := hmacSecret(env, f.hmacSecretFile)
		if err != nil {
			return nil, err
		}
		s, err := sign.NewHMACSigner(f.hmacAccessID, secret)
		if err != nil {
			return nil, err
		}
		return &credentials{signer: s, close: func() {}}, nil
	case f.keyFile != "":
		s, err := sign.LoadKeyFile(f.keyFile, f.email)
		if err != nil {
			return nil, err
		}
		return &credentials{signer: s, close: func() {}}, nil
	}
	return loadKeyless(ctx, env, &f.keyless)
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
