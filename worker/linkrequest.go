package worker

import (
	"context"

	"github.com/linkissuer/linkissuer/schema"
)

// parseLinkBody decodes the body of POST /v1/links (untrusted input; the
// caller bounds it to MaxLinkRequestBytes): one JSON object with only
// LinkRequest's fields or items, decoded with schema.DecodeJSON (linear,
// depth-bounded, no invalid UTF-8 or lone surrogate escapes, which would
// otherwise become U+FFFD in a signed name, and stops when ctx ends).
// Errors are *schema.FieldError values (400), or ctx's error. Each item's
// object name is checked where the request is issued.
func parseLinkBody(ctx context.Context, raw []byte) (linkBody, error) {
	var b linkBody
	err := schema.DecodeJSON(ctx, raw, &b, true, "object", "items.object")
	return b, err
}
