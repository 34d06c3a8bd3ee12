package links

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// Signer is what issuance needs of a signer: *sign.URLSigner.
type Signer interface {
	Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error)
}

// Issuer issues links: Handle turns storage events into
// linkissuer.link.v1 outputs (route, parse, ignore what must be ignored,
// then Issue), and Issue checks one request against the policy, signs it
// and builds the link. Job messages go to Jobs.
type Issuer struct {
	Signer Signer
	Policy *policy.Policy
	// Method is the method links are issued for (default GET).
	Method string
	// Jobs handles linkissuer.job.v1 messages; nil dead-letters them.
	Jobs worker.Handler
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
	// Audit, if set, records every issued link before it is released; its
	// error withholds the link (the message is nacked, the API answers 503).
	Audit Auditor
	// Pass copies allowed object metadata and event attributes into event
	// links; nil copies none.
	Pass *PassThrough
	// Durable, if set, mints a durable link for every event link (its
	// Durable field), after the link is signed and recorded; its error
	// withholds the link as an audit error does.
	Durable DurableMinter
}

// DurableMinter mints the durable link an event's link carries, for the
// link's object, recording it with the Requester in ctx; *durable.Minter
// implements it.
type DurableMinter interface {
	MintFor(ctx context.Context, l *schema.Link) (*schema.DurableLink, error)
}

// Auditor records an issued link; *audit.Recorder implements it.
type Auditor interface {
	Record(ctx context.Context, l audit.Link) error
}

// Handle is a worker.Handler for storage events and job messages.
func (h *Issuer) Handle(ctx context.Context, m *worker.Message) ([]worker.Output, error) {
	kind, err := schema.Route(m.Attributes, m.Data)
	if err != nil {
		return nil, err
	}
	if kind == schema.KindJob {
		if h.Jobs == nil {
			if _, err := schema.ParseJob(ctx, m.Data); err != nil {
				return nil, err
			}
			return nil, failure.Permanent(failure.CodeUnknownSchema, errors.New("this worker does not run jobs (no jobs handler configured)"))
		}
		return h.Jobs(ctx, m)
	}
	ev, err := schema.ParseObjectEvent(ctx, kind, m.Attributes, m.Data)
	if err != nil {
		return nil, err
	}
	if reason, ignore := ev.Ignore(); ignore {
		return nil, failure.Ignore(string(reason))
	}
	obj := schema.LinkObject{Generation: ev.Generation, Size: ev.Size, ContentType: ev.ContentType}
	var metadata map[string]string
	if ev.Payload != nil {
		metadata = ev.Payload.Metadata
	}
	if obj.Metadata, obj.EventAttributes, err = h.Pass.Extract(metadata, m.Attributes); err != nil {
		return nil, err
	}
	src := schema.LinkSource{MessageID: m.ID, EventType: string(ev.Type)}
	if ev.ID != "" {
		src.MessageID = ev.ID
	}
	ctx = audit.WithRequester(ctx, audit.Requester{Path: audit.PathEvent, Subscription: m.Subscription, MessageID: src.MessageID})
	link, err := h.Issue(ctx, policy.Request{
		Bucket:      ev.Bucket,
		Object:      ev.Object,
		Method:      h.Method,
		ContentType: ev.ContentType,
	}, obj, src)
	if err != nil {
		return nil, err
	}
	if h.Durable != nil {
		if link.Durable, err = h.Durable.MintFor(ctx, link); err != nil {
			return nil, err
		}
	}
	out, err := worker.LinkOutput(link)
	if err != nil {
		return nil, err
	}
	return []worker.Output{out}, nil
}

// Issue checks req against the policy, signs it and returns the link,
// after the Auditor (if any) has recorded it. The event path and the sync
// API (Sync) both end here.
func (h *Issuer) Issue(ctx context.Context, req policy.Request, obj schema.LinkObject, src schema.LinkSource) (*schema.Link, error) {
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
