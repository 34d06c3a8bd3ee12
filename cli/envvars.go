package cli

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/config"
)

// Environment variables are flag defaults, Cloud Run style; package config
// holds the rule (a variable that is set must parse, or the command stops
// with an EnvError naming it, exit 2) and the parsers. These helpers give
// the flags of commands without a config type their defaults; parseFlags
// checks every LINKISSUER_* variable named in a flag's usage ("[$NAME]").

// EnvError is an environment variable whose value does not parse.
type EnvError = config.EnvError

var (
	errNotInt  = config.ErrNotInt
	errNotBool = config.ErrNotBool
)

func parseEnvInt(v string) (int, error)       { return config.ParseInt(v) }
func parseEnvBool(v string) (bool, error)     { return config.ParseBool(v) }
func parseEnvUint(v string) (uint64, error)   { return config.ParseUint(v) }
func parseEnvFloat(v string) (float64, error) { return config.ParseFloat(v) }

// envLookup returns key's value, parsed, or def when it is unset. A value
// that does not parse is an *EnvError.
func envLookup[T any](env Env, key string, def T, parse func(string) (T, error)) (T, error) {
	return config.Lookup(env.Getenv, key, def, parse)
}

// envInt, envUint, envFloat, envBool and envDuration return key's value as
// a flag default (see config.Default).
func envInt(env Env, key string, def int) int {
	return config.Default(env.Getenv, key, def, parseEnvInt)
}
func envUint(env Env, key string, def uint64) uint64 {
	return config.Default(env.Getenv, key, def, parseEnvUint)
}
func envFloat(env Env, key string, def float64) float64 {
	return config.Default(env.Getenv, key, def, parseEnvFloat)
}
func envBool(env Env, key string, def bool) bool {
	return config.Default(env.Getenv, key, def, parseEnvBool)
}
func envDuration(env Env, key string, def time.Duration) time.Duration {
	return config.Default(env.Getenv, key, def, ParseDuration)
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
	err := config.CheckEnv(fs, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer %s: invalid environment: %v\n", fs.Name(), strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return err
}
