package schema

import (
	"context"
	"strings"
)

// Attributes linkissuer sets on the messages it publishes and reads on the
// messages it consumes.
const (
	// AttrSchema carries the version string of a linkissuer message.
	AttrSchema            = "schema"
	AttrDedupeKey         = "dedupe_key"
	AttrBucket            = "bucket"
	AttrObject            = "object"
	AttrGeneration        = "generation"
	AttrMethod            = "method"
	AttrJobID             = "job_id"
	AttrParentJobID       = "parent_job_id"
	AttrReasonCode        = "reason_code"
	AttrOriginalMessageID = "original_message_id"
)

// Kind is what Route found a message to be.
type Kind int

// Kinds of input message.
const (
	KindUnknown Kind = iota
	KindGCSNotification
	KindCloudEvent
	KindJob
)

// String is the kind's name as used in logs, metrics and the test corpus.
func (k Kind) String() string {
	switch k {
	case KindGCSNotification:
		return "gcs_notification"
	case KindCloudEvent:
		return "cloudevent"
	case KindJob:
		return "job"
	}
	return "unknown"
}

// Route tells what a Pub/Sub message is from its attributes, without
// decoding the data:
//   - a schema attribute decides alone: linkissuer.job.v1 is a job, anything
//     else is refused with unknown_schema (our own output formats included:
//     a subscription reading an output topic is a wiring mistake);
//   - otherwise an eventType or payloadFormat attribute marks a GCS
//     notification (GCS cannot set schema; a notification config's custom
//     attributes could, and then schema wins);
//   - otherwise a ce-specversion attribute marks a CloudEvent in the Pub/Sub
//     binding;
//   - otherwise the message is refused with missing_attribute naming
//     attributes.schema.
//
// Data larger than MaxMessageBytes is refused with too_large.
func Route(attrs map[string]string, data []byte) (Kind, error) {
	if len(data) > MaxMessageBytes {
		return KindUnknown, fieldErr(CodeTooLarge, "data", "%d bytes, the limit is %d", len(data), MaxMessageBytes)
	}
	if s, ok := attrs[AttrSchema]; ok {
		switch s {
		case JobV1:
			return KindJob, nil
		case LinkV1, JobDoneV1, DeadLetterV1:
			return KindUnknown, fieldErr(CodeUnknownSchema, "attributes."+AttrSchema, "%s is an output format of linkissuer, not an input: check which topic this subscription reads", s)
		}
		if strings.HasPrefix(s, "linkissuer.job.") {
			return KindUnknown, fieldErr(CodeUnknownSchema, "attributes."+AttrSchema, "unsupported job version %s (this worker reads %s)", quoteShort(s), JobV1)
		}
		return KindUnknown, fieldErr(CodeUnknownSchema, "attributes."+AttrSchema, "unknown schema %s", quoteShort(s))
	}
	if _, ok := attrs[AttrEventType]; ok {
		return KindGCSNotification, nil
	}
	if _, ok := attrs[AttrPayloadFormat]; ok {
		return KindGCSNotification, nil
	}
	if _, ok := attrs["ce-specversion"]; ok {
		return KindCloudEvent, nil
	}
	return KindUnknown, fieldErr(CodeMissingAttribute, "attributes."+AttrSchema, "no schema, eventType or ce-specversion attribute: cannot tell what this message is")
}

// Input is a routed and parsed message: Event is set for notifications and
// CloudEvents, Job for jobs.
type Input struct {
	Kind  Kind
	Event *ObjectEvent
	Job   *Job
}

// Parse routes a Pub/Sub message and parses it with the matching parser.
func Parse(ctx context.Context, attrs map[string]string, data []byte) (*Input, error) {
	kind, err := Route(attrs, data)
	if err != nil {
		return nil, err
	}
	in := &Input{Kind: kind}
	switch kind {
	case KindGCSNotification:
		in.Event, err = ParseGCSNotification(ctx, attrs, data)
	case KindCloudEvent:
		in.Event, err = ParseCloudEventAttributes(ctx, attrs, data)
	case KindJob:
		in.Job, err = ParseJob(ctx, data)
	}
	if err != nil {
		return nil, err
	}
	return in, nil
}

// ParseObjectEvent parses a message Route found to be an object event (a
// GCS notification or a CloudEvent) into the one ObjectEvent every event
// source yields. A new event source is a Kind, a case in Route and a case
// here: nothing outside schema branches on the source.
func ParseObjectEvent(ctx context.Context, kind Kind, attrs map[string]string, data []byte) (*ObjectEvent, error) {
	switch kind {
	case KindGCSNotification:
		return ParseGCSNotification(ctx, attrs, data)
	case KindCloudEvent:
		return ParseCloudEventAttributes(ctx, attrs, data)
	}
	return nil, fieldErr(CodeUnknownSchema, "attributes", "cannot read a message of kind %s as an object event", kind)
}
