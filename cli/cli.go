// Package cli holds linkissuer's subcommands. Each command parses its own
// flags (environment variables supply the defaults, Cloud Run style), does
// its work under the context it is given, and returns a process exit code.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// Env is what a command may touch of the process: its standard streams and
// environment. Tests supply their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// Command runs one subcommand with its arguments and returns the exit code.
type Command func(ctx context.Context, env Env, args []string) int

// Exit codes shared by commands.
const (
	ExitOK      = 0
	ExitFailure = 1 // the work ran and something failed
	ExitUsage   = 2 // the command line or configuration is wrong
)

// envString returns the environment value for key, or def.
func envString(env Env, key, def string) string {
	if v := env.Getenv(key); v != "" {
		return v
	}
	return def
}

// newFlagSet returns a flag set that reports errors to env.Stderr.
func newFlagSet(env Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, usage)
		fmt.Fprintln(env.Stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
