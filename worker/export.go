package worker

import (
	"net/http"

	"github.com/linkissuer/linkissuer/audit"
)

// Authenticate checks a request's bearer token as POST /v1/links does and,
// when it fails, writes the 401, 403 or 503 answer. It returns the
// caller's verified identity (email, subject, issuer; the zero Identity
// when authentication is off). Other APIs served next to the push server
// (durable links) authenticate their callers with it.
func (s *PushServer) Authenticate(w http.ResponseWriter, r *http.Request) (audit.Identity, bool) {
	return s.authenticate(w, r)
}

// WriteError answers status with the server's JSON error body.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	writeError(w, status, code, msg)
}

// LinkErrorStatus maps a LinkIssuer error to the status, stable code and
// caller-safe message POST /v1/links answers with.
func LinkErrorStatus(err error) (status int, code, msg string) {
	return linkErrorStatus(err)
}
