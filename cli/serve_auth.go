package cli

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/linkissuer/linkissuer/worker"
)

// pushAudiences returns the token audiences serve accepts: the --audiences
// list plus, for --service-url, the service URL itself (Eventarc's default
// audience) and its /pubsub/push and /events endpoints (a push
// subscription's default audience is its endpoint URL). Cloud Run does not
// tell a service its own URL in the environment, so one of the two must be
// configured: the request's Host header is never used. Without either, and
// without --insecure-skip-auth, it is an error that names both.
func pushAudiences(audiences, serviceURL string, insecure bool) ([]string, error) {
	out := splitList(audiences)
	if serviceURL != "" {
		u, err := url.Parse(serviceURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("--service-url [$LINKISSUER_SERVICE_URL] %q: want the service's URL, https://HOST with no path", serviceURL)
		}
		base := strings.TrimSuffix(serviceURL, "/")
		out = append(out, base, base+worker.PathPush, base+worker.PathEvents)
	}
	if len(out) == 0 && !insecure {
		return nil, fmt.Errorf("push authentication needs the token audience: set --service-url [$LINKISSUER_SERVICE_URL] " +
			"to the Cloud Run service URL, or --audiences [$LINKISSUER_AUDIENCES] to the push endpoint URL and any custom audience")
	}
	return out, nil
}
