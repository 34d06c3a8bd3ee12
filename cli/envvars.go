package cli

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
// naming it (exit 2). Nothing is silently dropped.
//
// The env* helpers give a flag its default from the environment (an invalid
// value leaves the built-in default in the -h output); parseFlags then
// checks every LINKISSUER_* variable named in a flag's usage ("[$NAME]")
// with the same parser, so every command gets the check by parsing its
// flags through parseFlags or parseFlagsInterspersed.

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

// envParser parses one kind of value; the same parsers serve the defaults
// and the check.
type envParser func(string) error

var (
	errNotInt   = errors.New("not a whole number")
	errNotUint  = errors.New("not a non-negative whole number")
	errNotFloat = errors.New("not a finite number")
	errNotBool  = errors.New("not a boolean (true, false, 1 or 0)")
)

func parseEnvInt(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, errNotInt
	}
	return n, nil
}

func parseEnvUint(v string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, errNotUint
	}
	return n, nil
}

func parseEnvFloat(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errNotFloat
	}
	return f, nil
}

func parseEnvBool(v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, errNotBool
	}
	return b, nil
}

// envParsers maps a flag's value type to the parser of its variable.
var envParsers = map[reflect.Type]envParser{
	reflect.TypeFor[int]():           func(v string) error { _, err := parseEnvInt(v); return err },
	reflect.TypeFor[uint64]():        func(v string) error { _, err := parseEnvUint(v); return err },
	reflect.TypeFor[float64]():       func(v string) error { _, err := parseEnvFloat(v); return err },
	reflect.TypeFor[bool]():          func(v string) error { _, err := parseEnvBool(v); return err },
	reflect.TypeFor[time.Duration](): func(v string) error { _, err := ParseDuration(v); return err },
}

// envLookup returns key's value, parsed, or def when it is unset. A value
// that does not parse is an *EnvError.
func envLookup[T any](env Env, key string, def T, parse func(string) (T, error)) (T, error) {
	v := env.Getenv(key)
	if v == "" {
		return def, nil
	}
	got, err := parse(v)
	if err != nil {
		return def, &EnvError{Var: key, Value: v, Err: err}
	}
	return got, nil
}

// envDefault is envLookup for a flag's default: an invalid value is
// reported by parseFlags, so here it falls back to def.
func envDefault[T any](env Env, key string, def T, parse func(string) (T, error)) T {
	got, _ := envLookup(env, key, def, parse)
	return got
}

// envInt, envUint, envFloat, envBool and envDuration return key's value as
// a flag default (see envDefault).
func envInt(env Env, key string, def int) int { return envDefault(env, key, def, parseEnvInt) }
func envUint(env Env, key string, def uint64) uint64 {
	return envDefault(env, key, def, parseEnvUint)
}
func envFloat(env Env, key string, def float64) float64 {
	return envDefault(env, key, def, parseEnvFloat)
}
func envBool(env Env, key string, def bool) bool { return envDefault(env, key, def, parseEnvBool) }
func envDuration(env Env, key string, def time.Duration) time.Duration {
	return envDefault(env, key, def, ParseDuration)
}

// envVarRef finds the variables a flag's usage names: "[$LINKISSUER_X]",
// "[$LINKISSUER_X=true]", "[$A, $B]", or "[LINKISSUER_X]".
var envVarRef = regexp.MustCompile(`\[\$?(LINKISSUER_[A-Z0-9_]+)[^\]]*\]`)

// checkEnv checks the variable behind every typed flag of fs.
func checkEnv(fs *flag.FlagSet, env Env) error {
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
			if v := env.Getenv(m[1]); v != "" {
				if err := parse(v); err != nil {
					errs = append(errs, &EnvError{Var: m[1], Value: v, Err: err})
				}
			}
		}
	})
	return errors.Join(errs...)
}

// parseFlags parses args into fs, then checks the environment behind its
// flags. Errors are written to env.Stderr; the caller exits with ExitUsage.
func parseFlags(fs *flag.FlagSet, env Env, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return reportEnv(fs, env)
}

// parseFlagsInterspersed is parseFlags for commands whose flags may follow
// positional arguments; it returns the positional arguments.
func parseFlagsInterspersed(fs *flag.FlagSet, env Env, args []string) ([]string, error) {
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	return positional, reportEnv(fs, env)
}

func reportEnv(fs *flag.FlagSet, env Env) error {
	err := checkEnv(fs, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer %s: invalid environment: %v\n", fs.Name(), strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return err
}
