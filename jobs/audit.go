package jobs

import (
	"context"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/sign"
)

// auditBatch bounds the records a piece keeps waiting for: at this many,
// the piece waits for them before it goes on, so memory stays flat.
const auditBatch = 1000

// beginAudit begins the audit record of a link t signed (Options.Audit);
// wait is nil when auditing is off.
func (r *Runner) beginAudit(ctx context.Context, t *task, req sign.Request, signed *sign.SignedURL, generation int64) (wait func(context.Context) error, err error) {
	if r.o.Audit == nil {
		return nil, nil
	}
	ctx = audit.WithRequester(ctx, audit.Requester{Path: audit.PathJob, JobID: t.rootID, Submitter: t.job.Submitter})
	return r.o.Audit.Begin(ctx, audit.Link{Request: req, Signed: signed, Generation: generation})
}

// awaitAudits waits for the records of the rows written so far; an error
// (audit.ErrUnavailable, transient) fails the piece before its rows are
// released.
func (w *pieceWriter) awaitAudits(ctx context.Context) error {
	for i, wait := range w.audits {
		if err := wait(ctx); err != nil {
			return err
		}
		w.audits[i] = nil
	}
	w.audits = w.audits[:0]
	return nil
}
