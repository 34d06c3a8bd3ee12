package cli

import "github.com/linkissuer/linkissuer/config"

// splitList splits a comma-separated flag, dropping blanks.
func splitList(s string) []string { return config.Split(s) }
