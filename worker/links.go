package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// Logical topic names that Outputs use; the Publisher maps them to real
// topics.
const (
	TopicResults = "results"
	TopicErrors  = "errors"
	TopicJobs    = "jobs"
)

// URLSigner is what the link handler needs of a signer: *sign.URLSigner.
type URLSigner interface {
	Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error)
}

// LinkHandler turns storage events into linkissuer.link.v1 messages: route,
// parse, ignore what must be ignored, check policy, sign, and return the
// link as an Output. Job messages go to Jobs.
type LinkHandler struct {
	Signer URLSigner
	Policy *policy.Policy
	// Method is the method links are issued for (default GET).
	Method string
	// Jobs handles linkissuer.job.v1 messages; nil dead-letters them.
	Jobs Handler
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
	// Audit, if set, records every issued link before it is released; its
	// error withholds the link (the message is nacked, the API answers 503).
	Audit Auditor
}

// Auditor records an issued link; *audit.Recorder implements it.
type Auditor interface {
	Record(ctx context.Context, l audit.Link) error
}

// Handle implements Handler.
func (h *LinkHandler) Handle(ctx context.Context, m *Message) ([]Output, error) {
	kind, err := schema.Route(m.Attributes, m.Data)
	if err != nil {
		return nil, err
	}
	var ev *schema.ObjectEvent
	switch kind {
	case schema.KindJob:
		if h.Jobs == nil {
			if _, err := schema.ParseJob(ctx, m.Data); err != nil {
				return nil, err
			}
			return nil, failure.Permanent(failure.CodeUnknownSchema, errors.New("this worker does not run jobs (no jobs handler configured)"))
		}
		return h.Jobs(ctx, m)
	case schema.KindGCSNotification:
		ev, err = schema.ParseGCSNotification(ctx, m.Attributes, m.Data)
	case schema.KindCloudEvent:
		ev, err = schema.ParseCloudEventAttributes(ctx, m.Attributes, m.Data)
	default:
		return nil, failure.Permanent(failure.CodeUnknownSchema, fmt.Errorf("cannot route message of kind %s", kind))
	}
	if err != nil {
		return nil, err
	}
	if reason, ignore := ev.Ignore(); ignore {
		return nil, failure.Ignore(string(reason))
	}
	src := schema.LinkSource{MessageID: m.ID, EventType: string(ev.Type)}
	if ev.ID != "" {
		src.MessageID = ev.ID
	}
	ctx = audit.WithRequester(ctx, audit.Requester{Path: audit.PathEvent, Subscription: m.Subscription, MessageID: src.MessageID})
	link, err := h.IssueLink(ctx, policy.Request{
		Bucket:      ev.Bucket,
		Object:      ev.Object,
		Method:      h.Method,
		ContentType: ev.ContentType,
	}, schema.LinkObject{Generation: ev.Generation, Size: ev.Size, ContentType: ev.ContentType}, src)
	if err != nil {
		return nil, err
	}
	out, err := LinkOutput(link)
	if err != nil {
		return nil, err
	}
	return []Output{out}, nil
}

// IssueLink checks req against policy, signs it and returns the link. It is
// shared by the event path, synchronous issuance and jobs.
func (h *LinkHandler) IssueLink(ctx context.Context, req policy.Request, obj schema.LinkObject, src schema.LinkSource) (*schema.Link, error) {
	grant, err := h.Policy.Check(req)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	query := grant.Query
	for _, p := range obj.Query {
		if !slices.ContainsFunc(grant.Query, func(g sign.Param) bool { return g.Name == p.Name }) {
			query = append(slices.Clip(query), p)
		}
	}
	if obj.Pin && obj.Generation > 0 {
		query = append(slices.Clip(query), sign.Param{Name: "generation", Value: strconv.FormatInt(obj.Generation, 10)})
	}
	sreq := sign.Request{
		Method:  grant.Method,
		Bucket:  req.Bucket,
		Object:  req.Object,
		Query:   query,
		Expires: grant.Expires,
		Time:    now().UTC().Truncate(time.Second),
	}
	signed, err := h.Signer.Sign(ctx, sreq)
	if err != nil {
		return nil, err
	}
	link, err := schema.NewLink(sreq, signed, obj, src)
	if err != nil {
		return nil, err
	}
	if h.Audit != nil {
		if err := h.Audit.Record(ctx, audit.Link{Request: sreq, Signed: signed, Generation: obj.Generation}); err != nil {
			return nil, err
		}
	}
	return link, nil
}

// LinkOutput encodes a link for the results topic.
func LinkOutput(l *schema.Link) (Output, error) {
	data, err := l.Data()
	if err != nil {
		return Output{}, err
	}
	return Output{Topic: TopicResults, Data: data, Attributes: l.Attributes()}, nil
}

// DeadLetters returns the DeadLetterFunc that writes linkissuer.deadletter.v1
// messages to the errors topic, stamped with workerID.
func DeadLetters(workerID string, now func() time.Time) DeadLetterFunc {
	if now == nil {
		now = time.Now
	}
	return func(m *Message, code failure.Code, err error) (Output, error) {
		d := schema.NewDeadLetter(schema.Original{
			MessageID:    m.ID,
			Attributes:   m.Attributes,
			Data:         m.Data,
			Subscription: m.Subscription,
		}, err, code, workerID, now())
		data, merr := json.Marshal(d)
		if merr != nil {
			return Output{}, fmt.Errorf("encode dead letter: %w", merr)
		}
		return Output{Topic: TopicErrors, Data: data, Attributes: d.Attributes()}, nil
	}
}
