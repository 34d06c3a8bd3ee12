package links

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/worker"
)

// fakeMinter hands out a fixed durable link and keeps what it was asked
// for, with the requester its context carried.
type fakeMinter struct {
	mu   sync.Mutex
	err  error
	got  []schema.Link
	with []audit.Requester
}

func (f *fakeMinter) MintFor(ctx context.Context, l *schema.Link) (*schema.DurableLink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	who, _ := audit.RequesterFrom(ctx)
	f.got, f.with = append(f.got, *l), append(f.with, who)
	if f.err != nil {
		return nil, f.err
	}
	return &schema.DurableLink{URL: "https://links.example.com/l/TOKEN-" + l.Object, ID: "0123456789abcdef0123456789abcdef",
		ExpiresAt: l.IssuedAt.Add(90 * 24 * time.Hour)}, nil
}

// TestEventLinkCarriesDurableLink: with a DurableMinter, an event's link
// carries the durable link minted for its object (asked for with the
// event's subscription and message id, after the link was signed), in the
// data only; a minting that fails (an audit record not written) withholds
// the link and is transient, so the event is redelivered. The sync API
// mints none.
func TestEventLinkCarriesDurableLink(t *testing.T) {
	t.Parallel()
	pol, err := policy.New(policy.Config{Allow: []string{"media"}})
	if err != nil {
		t.Fatal(err)
	}
	h := benchIssuerFor(t, pol)
	m := &fakeMinter{}
	h.Durable = m
	event := &worker.Message{ID: "42", Subscription: "projects/p/subscriptions/objects",
		Data: notificationData("media", "a b.txt", "7", nil), Attributes: notificationAttrs("media", "a b.txt", "7", nil)}

	outs, err := h.Handle(t.Context(), event)
	if err != nil || len(outs) != 1 {
		t.Fatalf("Handle: %d outputs, %v", len(outs), err)
	}
	var l schema.Link
	if err := json.Unmarshal(outs[0].Data, &l); err != nil {
		t.Fatal(err)
	}
	if l.Durable == nil || l.Durable.URL != "https://links.example.com/l/TOKEN-a b.txt" || l.URL == "" {
		t.Fatalf("link %+v, want the signed URL and the durable link", l)
	}
	for k, v := range outs[0].Attributes {
		if strings.Contains(v, "/l/") {
			t.Errorf("attribute %s carries the durable link", k)
		}
	}
	if len(m.got) != 1 || m.got[0].Object != "a b.txt" || m.got[0].Generation != 7 || m.got[0].Method != "GET" || m.got[0].URL == "" {
		t.Errorf("minted for %+v, want the signed link to a b.txt#7", m.got)
	}
	want := audit.Requester{Path: audit.PathEvent, Subscription: "projects/p/subscriptions/objects", MessageID: "42"}
	if len(m.with) != 1 || m.with[0] != want {
		t.Errorf("minted with requester %+v, want %+v", m.with, want)
	}

	m.err = failure.Transient(failure.Audit, audit.ErrUnavailable)
	outs, err = h.Handle(t.Context(), event)
	if len(outs) != 0 || !errors.Is(err, audit.ErrUnavailable) || !failure.IsTransient(err) {
		t.Errorf("minting not recorded: %d outputs, %v; want none and a transient error", len(outs), err)
	}

	m.err = nil
	sl, err := (&Sync{Links: h}).IssueLink(t.Context(), worker.LinkRequest{Bucket: "media", Object: "a b.txt"})
	if err != nil || sl.Durable != nil || len(m.got) != 2 {
		t.Errorf("sync link %+v (%v), %d mintings; want no durable link", sl, err, len(m.got))
	}
}
