package cli

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// Version implements `linkissuer version` (and `linkissuer --version`): the
// module version and the VCS revision the binary was built from, as the Go
// toolchain recorded them.
func Version(_ context.Context, env Env, args []string) int {
	fs := newFlagSet(env, "version", "Usage: linkissuer version\n\nPrints the module version and the VCS revision of this binary.")
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(env.Stderr, "linkissuer version: no build information in this binary")
		return ExitFailure
	}
	writeVersion(env.Stdout, info)
	return ExitOK
}

// writeVersion prints, for example:
//
//	linkissuer v1.2.0 (go1.26.8)
//	revision 6dcb2b4f0c... 2026-12-01T07:00:00Z (modified)
//
// "(devel)" is the version of a binary built from a checkout rather than
// installed by version; the revision line is absent when the build recorded
// no VCS information (go run, -buildvcs=false).
func writeVersion(w io.Writer, info *debug.BuildInfo) {
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	fmt.Fprintf(w, "linkissuer %s (%s)\n", version, info.GoVersion)
	var rev, when, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if rev != "" {
		fmt.Fprintf(w, "revision %s%s%s\n", rev, when, modified)
	}
}
