// Package revocation holds the revocation list of durable links: one JSON
// object in Cloud Storage (gs://BUCKET/revocations.json) naming revoked
// token ids, objects, object-name prefixes and a time before which every
// link is revoked.
//
// Contracts:
//   - Writers need no coordinator: Store.Update reads the list with its
//     generation, applies a change and writes with ifGenerationMatch; a
//     precondition failure (another writer won) re-reads and retries, so
//     concurrent writers' entries all survive. Changes are idempotent.
//   - Parse is bounded (MaxBytes, MaxEntries) and linear in its input; a
//     list it refuses is never half-applied.
//   - A Poller, run by every replica, re-reads the list every Interval
//     (reading only the object's metadata while the generation is
//     unchanged), so a revocation reaches every replica within
//     Interval plus one read. It fails closed: until the list has been read,
//     or once the last good read is older than MaxAge, Revoked returns
//     ErrUnavailable (durable clicks answer 503) and Ready reports why.
//   - Object and prefix entries revoke every durable link to the objects
//     they name, whenever it was issued; "before" revokes every link issued
//     before that instant. Entries are never expired by the list itself.
package revocation
