package cli

import (
	"flag"
	"fmt"
	"time"

	"github.com/linkissuer/linkissuer/linkcache"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/sign"
)

// linkCacheFlags configure the link cache in front of the event and
// synchronous paths (bulk jobs sign every row and never use it).
type linkCacheFlags struct {
	window time.Duration
	size   int
}

func (l *linkCacheFlags) register(fs *flag.FlagSet, env Env) {
	fs.DurationVar(&l.window, "link-cache-window", envDuration(env, "LINKISSUER_LINK_CACHE_WINDOW", linkcache.DefaultWindow), "identical link requests within this window get one URL (signed once; its lifetime grows by up to the window); 0 turns the cache off [$LINKISSUER_LINK_CACHE_WINDOW]")
	fs.IntVar(&l.size, "link-cache-size", envInt(env, "LINKISSUER_LINK_CACHE_SIZE", linkcache.DefaultSize), "most links the cache keeps [$LINKISSUER_LINK_CACHE_SIZE]")
}

// wrap returns urls behind the link cache, or urls itself if it is off.
func (l *linkCacheFlags) wrap(urls *sign.URLSigner) (links.Signer, error) {
	if l.window == 0 {
		return urls, nil
	}
	c, err := linkcache.New(urls, urls.MaxExpiry(), &linkcache.Options{Window: l.window, Size: l.size})
	if err != nil {
		return nil, fmt.Errorf("--link-cache-window/--link-cache-size [LINKISSUER_LINK_CACHE_WINDOW, LINKISSUER_LINK_CACHE_SIZE]: %w", err)
	}
	return c, nil
}
