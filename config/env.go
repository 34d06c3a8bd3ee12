package config

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Environment variables are flag defaults, Cloud Run style. Their one rule:
// a variable that is set must parse, or the command stops with an EnvError
// naming it. Nothing is silently dropped.
//
// The Env* helpers give a flag its default from the environment (an invalid
// value leaves the built-in default in the -h output); CheckEnv then checks
// every LINKISSUER_* variable named in a flag's usage ("[$NAME]") with the
// same parser.

// Getenv looks a variable up; "" means unset. Commands pass os.Getenv, tests
// a map lookup. This package never reads the process environment itself.
type Getenv func(string) string

// EnvError is an environment variable whose value does not parse.
type EnvError struct {
	Var   string
	Value string
	Err   error
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("$%s=%q: %v", e.Var, e.Value, e.Err)
}

func (e *EnvError) Unwrap() error { return e.Err }

// Errors of the environment parsers.
var (
	ErrNotInt   = errors.New("not a whole number")
	ErrNotUint  = errors.New("not a non-negative whole number")
	ErrNotFloat = errors.New("not a finite number")
	ErrNotBool  = errors.New("not a boolean (true, false, 1 or 0)")
)

// ParseInt, ParseUint, ParseFloat and ParseBool parse a variable's value.
func ParseInt(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, ErrNotInt
	}
	return n, nil
}

func ParseUint(v string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, ErrNotUint
	}
	return n, nil
}

func ParseFloat(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, ErrNotFloat
	}
	return f, nil
}

func ParseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, ErrNotBool
	}
	return b, nil
}

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

// envParsers maps a flag's value type to the parser of its variable.
var envParsers = map[reflect.Type]func(string) error{
	reflect.TypeFor[int]():           func(v string) error { _, err := ParseInt(v); return err },
	reflect.TypeFor[uint64]():        func(v string) error { _, err := ParseUint(v); return err },
	reflect.TypeFor[float64]():       func(v string) error { _, err := ParseFloat(v); return err },
	reflect.TypeFor[bool]():          func(v string) error { _, err := ParseBool(v); return err },
	reflect.TypeFor[time.Duration](): func(v string) error { _, err := ParseDuration(v); return err },
}

// Lookup returns key's value, parsed, or def when it is unset. A value that
// does not parse is an *EnvError.
func Lookup[T any](getenv Getenv, key string, def T, parse func(string) (T, error)) (T, error) {
	v := getenv(key)
	if v == "" {
		return def, nil
	}
	got, err := parse(v)
	if err != nil {
		return def, &EnvError{Var: key, Value: v, Err: err}
	}
	return got, nil
}

// Default is Lookup for a flag's default: an invalid value is reported by
// CheckEnv after parsing, so here it falls back to def.
func Default[T any](getenv Getenv, key string, def T, parse func(string) (T, error)) T {
	got, _ := Lookup(getenv, key, def, parse)
	return got
}

// String returns key's value, or def when it is unset.
func String(getenv Getenv, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// envVarRef finds the variables a flag's usage names: "[$LINKISSUER_X]",
// "[$LINKISSUER_X=true]", "[$A, $B]", or "[LINKISSUER_X]".
var envVarRef = regexp.MustCompile(`\[\$?(LINKISSUER_[A-Z0-9_]+)[^\]]*\]`)

// CheckEnv checks the variable behind every typed flag of fs: each error is
// an *EnvError.
func CheckEnv(fs *flag.FlagSet, getenv Getenv) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return // string lists and custom values parse themselves
		}
		parse, ok := envParsers[reflect.TypeOf(g.Get())]
		if !ok {
			return // strings: any value is one
		}
		for _, m := range envVarRef.FindAllStringSubmatch(f.Usage, -1) {
			if v := getenv(m[1]); v != "" {
				if err := parse(v); err != nil {
					errs = append(errs, &EnvError{Var: m[1], Value: v, Err: err})
				}
			}
		}
	})
	return errors.Join(errs...)
}
