package app

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
	"github.com/linkissuer/linkissuer/sign/iam"
)

// Signer is the signer the credentials chose, and how to release it.
type Signer struct {
	sign.Signer
	// Engine is set for keyless signing, for its metrics and concurrency.
	Engine *engine.Engine
	// leave stops the quota fleet's agent, if one runs.
	leave func()
}

// Close releases the signer: a member of a quota fleet leaves it.
func (s *Signer) Close() {
	if s.leave != nil {
		s.leave()
		s.leave = nil
	}
}

// NewSigner picks exactly one signer: an HMAC key, a key file, or keyless
// signing. log receives a quota fleet's state changes (nil: none).
func NewSigner(ctx context.Context, c *config.Credentials, log *zap.Logger) (*Signer, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	switch {
	case c.HMACAccessID != "":
		secret, err := hmacSecret(c)
		if err != nil {
			return nil, err
		}
		s, err := sign.NewHMACSigner(c.HMACAccessID, secret)
		if err != nil {
			return nil, err
		}
		return &Signer{Signer: s}, nil
	case c.KeyFile != "":
		s, err := sign.LoadKeyFile(c.KeyFile, c.Email)
		if err != nil {
			return nil, err
		}
		return &Signer{Signer: s}, nil
	}
	return NewKeylessSigner(ctx, &c.Keyless, log)
}

// hmacSecret reads the secret from its file, else takes
// $LINKISSUER_HMAC_SECRET's value; never a flag value, which would show in
// process listings and shell history.
func hmacSecret(c *config.Credentials) (string, error) {
	if c.HMACSecretFile != "" {
		data, err := os.ReadFile(c.HMACSecretFile)
		if err != nil {
			return "", fmt.Errorf("--hmac-secret-file: %w", err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	return c.HMACSecret, nil
}

// NewKeylessSigner builds the keyless signer: IAM signBlob behind the
// engine, a member of the quota fleet if k names one (see joinFleet; log
// receives its state changes, nil: none). Close leaves the fleet.
func NewKeylessSigner(ctx context.Context, k *config.Keyless, log *zap.Logger) (*Signer, error) {
	if !k.Requested() {
		return nil, fmt.Errorf("no credentials: give --key-file, --hmac-access-id, or --service-account/--keyless for IAM signBlob")
	}
	if err := k.Check(); err != nil {
		return nil, err
	}
	keyless, err := iam.NewSigner(ctx, iam.Options{
		Email:           k.ServiceAccount,
		Delegates:       k.Delegates,
		Endpoint:        k.IAMEndpoint,
		CredentialsFile: k.CredentialsFile,
		GcloudConfigDir: k.GcloudConfigDir,
	})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(keyless, &engine.Options{MaxInFlight: k.InFlight, Ceiling: k.Ceiling, Quota: k.Quota / 60})
	if err != nil {
		return nil, err
	}
	s := &Signer{Signer: eng, Engine: eng}
	if k.Fleet.URL != "" {
		if log == nil {
			log = zap.NewNop()
		}
		if s.leave, err = joinFleet(ctx, &k.Fleet, eng, log); err != nil {
			return nil, err
		}
	}
	return s, nil
}
