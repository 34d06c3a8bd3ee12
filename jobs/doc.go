// Package jobs runs bulk export jobs (linkissuer.job.v1): list a prefix or
// take an explicit list, check each object against policy, sign it, and
// stream the links into a manifest object (JSONL or CSV rows of
// schema.ManifestRow) or onto a topic, then announce the result with one
// linkissuer.job_done.v1 message carrying a signed URL to the manifest.
//
// What it guarantees:
//   - Flat memory. Listing is paged and pulled only as fast as signing goes
//     (at most Options.Concurrency objects in flight); rows stream into a
//     resumable upload of Options.ChunkSize chunks. Nothing grows with the
//     job's size except the split plan (one name per shard).
//   - Nothing is dropped silently. Every listed object is counted once, as
//     signed (a manifest row or link) or as an error row (refused by policy,
//     missing, or refused by the signer as given) in the errors file beside
//     the manifest; listed = signed + skipped + failed in the completion
//     message. A signer that is down, throttled or gives up is never an
//     error row: the piece fails and is redelivered (see objectFailure), so a
//     signer outage delays a job and never finishes it.
//   - Scale-out without a coordinator. A job above Split.Above objects is
//     split into shards (key ranges of the listing, or slices of the list)
//     published back to the jobs topic; any replica runs any shard. Each
//     shard writes a part and a done marker; the replica whose marker
//     completes the set takes a lock object created with a does-not-exist
//     precondition, composes the parts in order (32 per compose call, in a
//     tree) and returns the completion. See layout for the object names.
//   - Idempotency. Names derive from the job ID. A shard whose marker exists
//     is not redone; a shard killed mid-way left no part (objects appear
//     only at a successful upload's end) or a complete one, and is redone
//     from its start, replacing its part whole; the plan is written once,
//     so a redelivered root job republishes the same shards. The final
//     manifest therefore lists every object exactly once.
//   - At-least-once completion. The completion is an Output of the message
//     that finished the job, so the worker's Router publishes it before the
//     ack; a redelivery of that message publishes it again (consumers
//     dedupe by job_id). Links on a topic are at-least-once per object
//     (consumers dedupe by dedupe_key).
//   - Errors are classified for the Router: a bad message, a policy refusal
//     of the whole job (bucket, method, expiry, manifest location) and a
//     missing bucket are permanent (dead-lettered); storage or signer
//     outages and cancellation are transient (redelivered, redone).
//
// Rows within a part are in completion order, not name order; parts are
// composed in shard order.
package jobs
