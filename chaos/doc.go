// Package chaos is linkissuer's chaos suite: it runs the worker as a child
// process (`linkissuer worker`, the same code as the command) against the
// local stack (Pub/Sub, fake-gcs-server, the IAM Credentials emulator), injects
// faults (kill -9 of a worker, a Pub/Sub cut, signBlob 429 storms, 5xx
// answers and hangs, storage write and compose failures) and accounts for
// every event: events or objects in, links out, lost (must be 0),
// duplicates (each with the same dedupe key), jobs announced (exactly once).
//
// The package holds tests only:
//
//	go test ./chaos                                  # the fast scenarios
//	LINKISSUER_CHAOS_FULL=1 go test -v -run TestChaos -timeout 30m ./chaos
//
// prints the table that RELIABILITY.md records. Scenarios on Google's
// Pub/Sub emulator skip where it is not installed (pstest runs everywhere).
package chaos
