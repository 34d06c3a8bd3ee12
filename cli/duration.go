package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

// ParseDuration accepts a Go duration ("90m", "1h30m") or a number with one
// of the gsutil suffixes s, m, h, d ("7d", "12h"); a bare number is seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	unit := time.Second
	num := s
	switch s[len(s)-1] {
	case 's':
		num = s[:len(s)-1]
	case 'm':
		unit, num = time.Minute, s[:len(s)-1]
	case 'h':
		unit, num = time.Hour, s[:len(s)-1]
	case 'd':
		unit, num = 24*time.Hour, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > int64(1<<62)/int64(unit) {
		return 0, fmt.Errorf("invalid duration %q: use a Go duration (90m, 1h30m) or N with s, m, h or d (7d)", s)
	}
	return time.Duration(n) * unit, nil
}

// expiryError reports a lifetime given as flagName=value that
// sign.CheckExpiry refused (err) under limit, naming the flag that lifts
// the keyless cap when that is the limit.
func expiryError(flagName, value string, limit time.Duration, err error) error {
	if limit == sign.KeylessExpiry {
		return fmt.Errorf("%s %s: %w; --allow-long-keyless lifts the cap", flagName, value, err)
	}
	return fmt.Errorf("%s %s: %w", flagName, value, err)
}
