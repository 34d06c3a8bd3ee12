package durable

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/schema"
)

var _ links.DurableMinter = (*Minter)(nil)

// Minter mints the durable link that an event's linkissuer.link.v1
// message carries (worker --durable-links): one per link, for the link's
// object, generation and method, living TTL. It implements
// links.DurableMinter.
//
// Contract: a durable link is released only once its record is written
// (fail-closed auditing) with the Requester found in ctx and the token's
// id; the token is never logged, only its id. A redelivered event gets a
// new durable link (and a new record), as it gets a new signed URL.
type Minter struct {
	ring   *KeyRing
	public string
	ttl    time.Duration
	tokens TokenAuditor
	log    *zap.Logger
	now    func() time.Time
}

// NewMinter validates o (its keys, PublicURL, TTL, MaxTTL, Tokens,
// Logger and Now) and returns a Minter. PublicURL is where serve
// --durable-links answers the clicks; Tokens records every durable link
// minted (outcome "minted"), and its error (fail-closed) withholds it.
func NewMinter(o Options) (*Minter, error) {
	public, err := o.prepare()
	if err != nil {
		return nil, err
	}
	if o.TTL == 0 {
		o.TTL = o.MaxTTL
	}
	if o.TTL < time.Minute || o.TTL > o.MaxTTL {
		return nil, fmt.Errorf("durable: lifetime %s outside 1m..%s (the cap)", o.TTL, o.MaxTTL)
	}
	return &Minter{ring: o.Ring, public: public, ttl: o.TTL, tokens: o.Tokens, log: o.Logger, now: o.Now}, nil
}

// MintFor mints a durable link to l's object: its bucket, object,
// generation (pinned: a click signs that generation, as the message names
// it) and method (GET or HEAD; durable links are followed by browsers).
// A link the token cannot carry is a permanent failure; an audit record
// not written (fail-closed) is the recorder's transient error, and the
// link must then be withheld.
func (m *Minter) MintFor(ctx context.Context, l *schema.Link) (*schema.DurableLink, error) {
	if l.Method != http.MethodGet && l.Method != http.MethodHead {
		return nil, failure.Permanent(failure.CodeInvalidMethod, fmt.Errorf("durable link: method %s: GET or HEAD only", l.Method))
	}
	now := m.now().Truncate(time.Second)
	c := Claims{ID: NewID(), Bucket: l.Bucket, Object: l.Object, Generation: l.Generation, Method: l.Method,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(m.ttl).Unix()}
	tok, err := m.ring.Current().Mint(c)
	if err != nil {
		return nil, failure.Permanent(failure.CodeInvalidObjectName, fmt.Errorf("durable link to %.64q: %w", l.Object, err))
	}
	if err := recordMint(ctx, m.tokens, c, tok); err != nil {
		return nil, err
	}
	m.log.Debug("durable link minted", zap.String("token_id", c.ID), zap.String("bucket", c.Bucket),
		zap.Int64("generation", c.Generation), zap.Time("expires_at", time.Unix(c.ExpiresAt, 0)))
	return c.link(m.public, tok), nil
}

// recordMint writes the record of the durable link c, minted as tok
// (outcome "minted"), with the Requester found in ctx and c's id; nil
// tokens record nothing. Every durable link, asked for through the API or
// minted for an event's link, is recorded here; an error means the link
// must not be released.
func recordMint(ctx context.Context, tokens TokenAuditor, c Claims, tok string) error {
	if tokens == nil {
		return nil
	}
	who, _ := audit.RequesterFrom(ctx)
	who.TokenID = c.ID
	return tokens.Mint(audit.WithRequester(ctx, who), audit.Minting{At: time.Unix(c.IssuedAt, 0), Bucket: c.Bucket,
		Object: c.Object, Generation: c.Generation, Method: c.Method, ResponseParams: params(c.Params),
		ExpiresAt: time.Unix(c.ExpiresAt, 0), Token: tok})
}

// link is the durable link of c, minted as tok, under public.
func (c Claims) link(public, tok string) *schema.DurableLink {
	return &schema.DurableLink{URL: public + PathClick + tok, ID: c.ID, ExpiresAt: time.Unix(c.ExpiresAt, 0).UTC()}
}
