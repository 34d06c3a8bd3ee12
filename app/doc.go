// Package app builds linkissuer's running parts from a validated
// configuration (package config): the signer (key file, HMAC key, or
// keyless through IAM signBlob and the batching engine), the URL options
// and policy, the Pub/Sub and Cloud Storage clients, the S3-compatible
// store, the link handler, the router and the jobs runner.
//
// It is the one place where these are wired: the worker, serve and export
// commands, the demo, and the worker and link-cache load tests call it
// rather than wiring by hand (the load tests through Options.WrapHandler and
// WrapPublisher, to time what passes). loadtest/jobs and loadtest/keyless
// build the jobs runner (over a generated source) and the engine (beside
// signing without it) themselves: those are what they measure.
// It reads no environment; everything comes from the configuration. What
// it builds it also closes (Service.Close, Signer.Close).
package app
