package links

import (
	"fmt"

	"github.com/linkissuer/linkissuer/schema"
)

// MaxPassThroughKeys bounds each allow-list of a PassThrough.
const MaxPassThroughKeys = 64

// PassThrough is what an event's link carries on for downstream services,
// so that they need no second lookup: the listed keys of the object's
// custom metadata (the storage#object's metadata) and of the event
// message's attributes (for a GCS notification, the notification config's
// custom attributes). Keys not listed are never copied. A nil *PassThrough
// copies nothing.
type PassThrough struct {
	metadata, attributes []string
}

// NewPassThrough compiles the allow-lists. Keys are exact (no globs),
// 1..schema.MaxLinkMetaKey bytes, at most MaxPassThroughKeys per list;
// duplicates are dropped. Two empty lists give nil.
func NewPassThrough(metadataKeys, attributeKeys []string) (*PassThrough, error) {
	if len(metadataKeys) == 0 && len(attributeKeys) == 0 {
		return nil, nil
	}
	p := &PassThrough{}
	for _, l := range []struct {
		name string
		in   []string
		out  *[]string
	}{{"metadata", metadataKeys, &p.metadata}, {"attributes", attributeKeys, &p.attributes}} {
		if len(l.in) > MaxPassThroughKeys {
			return nil, fmt.Errorf("links: %d %s keys to pass through; at most %d", len(l.in), l.name, MaxPassThroughKeys)
		}
		seen := map[string]bool{}
		for _, k := range l.in {
			switch {
			case k == "":
				return nil, fmt.Errorf("links: empty %s key to pass through", l.name)
			case len(k) > schema.MaxLinkMetaKey:
				return nil, fmt.Errorf("links: %s key %.32q... is %d bytes; at most %d", l.name, k, len(k), schema.MaxLinkMetaKey)
			case seen[k]:
				continue
			}
			seen[k] = true
			*l.out = append(*l.out, k)
		}
	}
	return p, nil
}

// Extract copies the allowed keys of metadata and attributes. It looks up
// each allowed key once (time linear in the allow-lists and the bytes
// copied, whatever the size of the inputs) and returns nil maps when
// nothing is copied. Values over schema's bounds are refused, not cut:
// the error is a *schema.FieldError with CodeMetadataTooLarge, which
// dead-letters the event with the original message, instead of a link
// that silently lacks what a downstream service routes on.
func (p *PassThrough) Extract(metadata, attributes map[string]string) (meta, attrs map[string]string, err error) {
	if p == nil {
		return nil, nil, nil
	}
	meta = pick(p.metadata, metadata)
	attrs = pick(p.attributes, attributes)
	if err := schema.ValidateLinkMeta(meta, attrs); err != nil {
		return nil, nil, err
	}
	return meta, attrs, nil
}

func pick(keys []string, from map[string]string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		v, ok := from[k]
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(keys))
		}
		out[k] = v
	}
	return out
}
