package jobs

import "github.com/linkissuer/linkissuer/glob"

// Glob is a compiled source.match pattern in Cloud Storage's matchGlob
// syntax, matched against the whole object name by package glob (the one
// glob engine, shared with policy). The zero Glob, from an empty pattern,
// matches every name.
type Glob = glob.Glob

// CompileGlob compiles a source.match pattern. schema.Job.Validate has
// already refused unbalanced brackets; CompileGlob reports them too.
func CompileGlob(pattern string) (Glob, error) { return glob.Compile(pattern) }
