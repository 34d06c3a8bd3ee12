// Package schema defines the wire formats linkissuer reads and writes, and
// validates them. It does no I/O: every function is a pure transformation of
// bytes and attribute maps, so the worker, the push server, the jobs package
// and tests share one definition of each format.
//
// # Formats
//
// Inputs, told apart by Route from attributes alone:
//   - GCS Pub/Sub notifications (GCSNotificationV1), exactly as Cloud Storage
//     sends them: attributes eventType, payloadFormat, bucketId, objectId,
//     objectGeneration, eventTime (always), notificationConfig,
//     overwroteGeneration, overwrittenByGeneration (sometimes); data a
//     storage#object (JSON_API_V1) or empty (NONE). ParseGCSNotification.
//   - Eventarc Cloud Storage CloudEvents (CloudEventStorageV1), binary or
//     structured mode over HTTP (CloudEventHTTP reads it into ce-*
//     attributes and data) or ce-* attributes on Pub/Sub; either way
//     ParseCloudEventAttributes validates it.
//   - Job messages, attribute schema=linkissuer.job.v1 (JobV1). ParseJob.
//
// Outputs, each with a schema attribute equal to its version:
//   - linkissuer.link.v1 (Link): one signed URL, and for an event's link
//     optionally a durable link (DurableLink, an added optional field:
//     readers that do not know it are unaffected); attributes schema,
//     dedupe_key, bucket, generation, method, and object and job_id when
//     they apply.
//   - linkissuer.job_done.v1 (JobDone): one per root job.
//   - linkissuer.deadletter.v1 (DeadLetter): a refused message with its
//     original payload, attributes, message ID and reason_code.
//   - Manifest rows (ManifestRowV1, ManifestErrorRowV1) in JSONL or CSV
//     (RowWriter, RowReader).
//
// A version string names one format forever: a change that an old reader
// would misread gets a new version (v2) rather than a changed v1.
//
// # Validation
//
// Every parser validates fully before returning; every failure is a
// *FieldError that matches ErrInvalid (errors.Is) and carries the field
// ("attributes.objectId", "data.generation", "source.objects[3].name") and
// a stable ReasonCode (invalid_json, missing_attribute, unknown_event_type,
// invalid_object_name, expiry_out_of_range, ...). An ErrInvalid message can
// never succeed: the worker dead-letters it with CodeOf(err) and acks it.
//
// Object names are checked with sign.ValidateObject (valid UTF-8, 1-1024
// bytes, no CR or LF); invalid UTF-8 and lone UTF-16 surrogate escapes
// (\ud800) inside JSON are refused rather than replaced with U+FFFD as
// encoding/json would.
//
// Every parser of untrusted input takes a context and is bounded and
// linear: input over MaxMessageBytes is refused before it is read, one scan
// (linear in the input, nesting limited to MaxJSONDepth) runs before
// encoding/json decodes, and the scan returns the context's error within
// 64 KiB of the context ending (so the message is retried, not
// dead-lettered). DecodeJSON offers the same to transport envelopes and
// request bodies elsewhere.
//
// Dead letters (NewDeadLetter) redact every URL signature from the
// original payload, attributes and reason (RedactSignatures). HasDotSegment
// finds the "." and ".." name segments policy refuses with dot_segment. ValidateObjectNameStrict adds
// a refusal of every other control character; the worker's policy applies it,
// since GCS itself stores such names. Bucket names are checked with
// sign.ValidateBucket. Policy (allowed buckets, prefixes, methods, expiry
// caps) is not this package's business.
//
// Job decoding is strict (unknown fields refused); storage#object decoding is
// lenient (GCS adds fields). Any input larger than MaxMessageBytes (10 MB,
// Pub/Sub's limit) is refused with too_large before decoding.
//
// # Attribute limits
//
// Pub/Sub allows 100 attributes per message, keys up to 256 bytes and values
// up to 1024 bytes. Outputs stay within them by construction: URLs are only
// in message data; a dedupe_key longer than MaxPlainDedupeKey (256) bytes is
// replaced by "sha256:" and the hex SHA-256 of its plain form; the object
// attribute is omitted for names longer than MaxObjectAttribute (256) bytes.
// ValidateAttributes checks a map against the limits.
//
// # JSON Schema
//
// JSONSchemas embeds a draft 2020-12 JSON Schema for each format, for
// consumers outside Go. The Go validation here is the authority.
package schema
