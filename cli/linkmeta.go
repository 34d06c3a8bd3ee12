package cli

import (
	"flag"
	"fmt"

	"github.com/linkissuer/linkissuer/links"
)

// linkMetaFlags are the allow-lists of what event links carry on for
// downstream services.
type linkMetaFlags struct {
	metadata, attributes string
}

func (l *linkMetaFlags) register(fs *flag.FlagSet, env Env) {
	fs.StringVar(&l.metadata, "link-metadata", envString(env, "LINKISSUER_LINK_METADATA", ""), "comma-separated object metadata keys copied into each event's linkissuer.link.v1 (metadata); values over 1 KiB, or over 8 KiB in all, dead-letter the event with metadata_too_large [$LINKISSUER_LINK_METADATA]")
	fs.StringVar(&l.attributes, "link-attributes", envString(env, "LINKISSUER_LINK_ATTRIBUTES", ""), "comma-separated event message attributes (a notification config's custom attributes) copied into each event's linkissuer.link.v1 (event_attributes), within the same bounds [$LINKISSUER_LINK_ATTRIBUTES]")
}

// passThrough compiles the allow-lists; nil when both are empty.
func (l *linkMetaFlags) passThrough() (*links.PassThrough, error) {
	p, err := links.NewPassThrough(splitList(l.metadata), splitList(l.attributes))
	if err != nil {
		return nil, fmt.Errorf("--link-metadata/--link-attributes [LINKISSUER_LINK_METADATA, LINKISSUER_LINK_ATTRIBUTES]: %w", err)
	}
	return p, nil
}
