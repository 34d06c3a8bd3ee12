package app

import (
	"flag"
	"io"

	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/worker"
)

// Configuration is a command's configuration type (config.Worker,
// config.Serve, config.Export).
type Configuration interface {
	Register(fs *flag.FlagSet, getenv config.Getenv)
	Validate() error
}

// ParseArgs fills c from args as the command's flags would, with the
// command's defaults and no environment, and validates it. The demo and
// the load tests build their configuration this way: they run what
// `linkissuer worker ARGS` (or serve, export) would run, and variables set
// for a real deployment cannot redirect them.
func ParseArgs(c Configuration, args ...string) error {
	fs := flag.NewFlagSet("linkissuer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs, func(string) string { return "" })
	if err := fs.Parse(args); err != nil {
		return err
	}
	return c.Validate()
}

// PullOptions are the worker's receive settings from its configuration.
func PullOptions(c *config.Worker) worker.PullOptions {
	return worker.PullOptions{
		MaxOutstanding:      c.MaxOutstanding,
		MaxOutstandingBytes: c.MaxOutstandingBytes,
		Streams:             c.Streams,
		MaxExtension:        c.MaxExtension,
		HandlerTimeout:      c.Pull.HandlerTimeout,
		Grace:               c.Grace,
	}
}
