// Package config is linkissuer's configuration: one type per long-running
// command (Worker, Serve, Export), built from flags whose defaults come from
// LINKISSUER_* environment variables (Cloud Run style), then checked by a
// pure Validate.
//
// The contract:
//   - Register adds a command's flags to a flag.FlagSet, each default taken
//     from its variable through the Getenv it is given; this package never
//     reads the process environment itself.
//   - A variable that is set must parse: CheckEnv (run after parsing)
//     reports each one that does not as an *EnvError naming it.
//   - Validate does not modify its receiver and reports every problem at
//     once; each error names the flag and its variable, e.g.
//     "--max-outstanding / LINKISSUER_MAX_OUTSTANDING: must be >= 0, got -1".
//   - Secrets have variables and no flags (a flag's value shows in process
//     listings): LINKISSUER_HMAC_SECRET, LINKISSUER_S3_SECRET.
//
// Package app turns a validated configuration into running parts.
package config
