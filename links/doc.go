// Package links issues links: a storage event or a request becomes a
// policy.Request, the policy grants or refuses it, the signer signs it, and
// the result is a linkissuer.link.v1 message (schema.Link). The pull
// worker and the push server run Issuer.Handle behind worker.Router; the
// sync API (POST /v1/links, and durable-link clicks) runs Sync.IssueLink
// behind worker.PushServer. All of them end in Issuer.Issue, so that a
// policy, a signer or an audit rule applies to every path at once.
//
// Contract:
//   - Handle returns outputs or an error and never acks, nacks or
//     publishes: the router does. Its errors are classified by
//     failure.Classify: malformed events and policy refusals are permanent
//     (with their reason code), metadata updates and overwritten
//     generations are ignored, signer and storage outages are transient.
//   - One link per event, to the results topic, with the dedupe_key
//     attribute; a redelivered event gives a link with the same dedupe_key.
//   - Issue checks the policy before anything is signed; the signing time
//     is the Issuer's clock, truncated to the second. With an Auditor, a
//     link whose record cannot be written is not returned (fail closed).
//   - Sync checks the policy before it looks an object up (an object the
//     caller may not have is never looked up), pins a requested generation
//     into the URL, and makes a missing object a permanent
//     failure.CodeObjectNotFound (404).
//   - With a DurableMinter, an event's link also carries a durable link
//     to its object, minted and recorded after the link is signed; a
//     durable link that cannot be recorded withholds the whole link (the
//     event is nacked). Job rows and the sync API carry none.
//   - The URL is a credential: it is in the message data only, never in
//     attributes, logs or errors; so is a durable link's.
package links
