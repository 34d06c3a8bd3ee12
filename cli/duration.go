package cli

import (
	"fmt"
	"time"

	"github.com/linkissuer/linkissuer/config"

	"github.com/linkissuer/linkissuer/sign"
)

// ParseDuration accepts a Go duration ("90m", "1h30m") or a number with one
// of the gsutil suffixes s, m, h, d ("7d", "12h"); a bare number is seconds.
func ParseDuration(s string) (time.Duration, error) { return config.ParseDuration(s) }

// expiryError reports a lifetime given as flagName=value that
// sign.CheckExpiry refused (err) under limit, naming the flag that lifts
// the keyless cap when that is the limit.
func expiryError(flagName, value string, limit time.Duration, err error) error {
	if limit == sign.KeylessExpiry {
		return fmt.Errorf("%s %s: %w; --allow-long-keyless lifts the cap", flagName, value, err)
	}
	return fmt.Errorf("%s %s: %w", flagName, value, err)
}
