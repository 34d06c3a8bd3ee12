// Package engine runs a remote sign.Signer (IAM Credentials signBlob) at
// the speed its quota allows. An Engine wraps any sign.Signer and is one
// itself, so a sign.URLSigner built on it needs no change. A bulk caller
// keeps the pipeline full by having about 2×Options.MaxInFlight requests
// in progress at once: jobs does so through its Concurrency (the
// composition root sets it to twice the engine's MaxInFlight), and
// Engine.SignAll does so for a slice of requests (the keyless loadtest).
//
// What it guarantees:
//   - At most Options.MaxInFlight calls to the inner signer at once.
//   - Calls are paced by a rate that finds the quota without being told it:
//     slow start until the first 429 / RESOURCE_EXHAUSTED, then additive
//     increase and a multiplicative cut to just under what the server
//     admitted, at most once per round trip. Options.Ceiling caps it.
//   - A quota that refuses everything (a per-minute window spent) pauses
//     the rate: one probe at a time until it admits again; a window seen
//     to reset is paced from then on to spread each window's count over
//     the window. Replicas need no configuration to share one quota.
//   - A known quota (Options.Quota, the project's) caps the rate at
//     fleet.KnownShare of it, where it starts: nothing to find. Replicas
//     that know it and see each other (package fleet) split it.
//   - Transient errors (failure.IsTransient, such as a *sign.RetryableError:
//     429, 5xx, timeouts, the transient signBlob 403) are retried with
//     exponential backoff and full jitter, at most Options.MaxAttempts calls
//     per signature (refused probes of a paused rate do not count, for up to
//     two minutes of pause); then a *GiveUpError, which wraps the last cause,
//     is not retried by the engine and classifies as a transient failure of
//     the signer. Other errors are returned at once, unchanged.
//   - Each call has its own deadline (Options.CallTimeout); a call that
//     runs out is retried. Cancelling the caller's context stops its waits
//     (concurrency slot, pacing, backoff) and its call at once.
//   - Identical requests (same scope and string-to-sign) in flight together
//     are signed once; each caller gets its own copy of the signature.
//   - Counters and latency histograms are kept in memory (Stats); the engine
//     logs nothing and never holds on to payloads or signatures.
//
// The engine starts no goroutine of its own: all work runs on the callers'
// goroutines (and, for shared requests, on a goroutine that lives exactly
// as long as the first caller's call), so it needs no Close.
package engine
