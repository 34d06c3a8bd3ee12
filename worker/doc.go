// Package worker is linkissuer's transport: it receives Pub/Sub messages
// (pull, or push over HTTP), runs a Handler on each, publishes the handler's
// outputs (to logical topics, or to full topic names with NamedTopics), and
// only then acknowledges the message. It also serves the HTTP side of the
// sync API (POST /v1/links: body bounds, batches, status codes) for a
// LinkIssuer, and the ops endpoints. What a message or a request means is
// not its business: package links issues links, package jobs runs jobs.
//
// Contract:
//   - At-least-once in, at-least-once out: a message is acked only after
//     every output it produced is confirmed by Pub/Sub. Consumers drop
//     duplicates by the dedupe_key attribute of linkissuer.link.v1.
//   - The Router is the only place that decides ack or nack. Handlers return
//     outputs or an error, and failure.Classify decides the rest:
//     permanent (failure.Permanent, schema.ErrInvalid, *policy.Refusal,
//     *sign.InputError) -> a linkissuer.deadletter.v1 message with the
//     original payload, attributes and reason code on the error topic, then
//     ack; ignored (failure.Ignore) -> ack, counted by reason; transient
//     (the component that failed: signer, storage, publisher) and anything
//     unclassified -> nack, so Pub/Sub redelivers with its retry policy and,
//     after the subscription's max delivery attempts, moves the message to
//     its dead-letter topic. The outcome and failure.Class.Reason label the
//     linkissuer_messages_total metric.
//   - If publishing the dead-letter message itself fails, the input is
//     nacked: nothing is ever dropped silently.
//   - A panicking handler is recovered and treated as a transient failure.
//   - Shutdown: Pull stops pulling when its context ends, lets in-flight
//     messages finish within the grace period, nacks what is left, and
//     flushes the publisher.
package worker
