// Package sign builds V4 signed URLs and POST policies for Google Cloud
// Storage (GOOG4-RSA-SHA256, GOOG4-HMAC-SHA256) and S3-compatible stores
// (AWS4-HMAC-SHA256).
//
// One canonicalizer serves every algorithm: a Request is turned into a
// canonical request and a string-to-sign by pure functions that take the
// signing time explicitly, and only the final step, turning the
// string-to-sign into signature bytes, goes through a Signer. A Signer may be
// a local key (key file, HMAC secret) or a remote one (IAM Credentials
// signBlob, wrapped by a batching engine); URL assembly does not know which.
//
// Guarantees:
//   - Expiry is between 1 second and 7 days. Keyless signatures (signBlob) are
//     capped at 12 hours unless Options.AllowLongKeyless is set, because the
//     system-managed key that made them is only guaranteed for 12 hours.
//   - Signatures are never logged or wrapped into errors by this package.
//   - Inputs are validated before anything is signed; a *InputError names the
//     offending field and is permanent (retrying will not help).
package sign
