// Package gcloudtest runs `gcloud storage sign-url` offline for tests that
// cross-check linkissuer with the URLs users already make. Tests skip, with
// a message, where gcloud is not installed.
package gcloudtest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// Find returns the gcloud binary, or skips t with a message.
func Find(t testing.TB) string {
	t.Helper()
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		t.Skip("gcloud is not installed: the gcloud cross-check is skipped")
	}
	if testing.Short() {
		t.Skip("-short: each gcloud invocation takes 1-3 s")
	}
	return gcloud
}

var signedURL = regexp.MustCompile(`https://storage\.googleapis\.com/\S+`)

var signature = regexp.MustCompile(`(?i)(x-(?:goog|amz)-signature=)([0-9a-f]{8})[0-9a-f]*`)

// Redact cuts every signature in s to its first 8 hex digits.
func Redact(s string) string { return signature.ReplaceAllString(s, "${1}${2}…") }

// SignURL runs gcloud with args (`storage sign-url ...`) and returns the
// signed URL it printed. gcloud prints it, then probes the URL over the
// network, which fails offline: the exit status is ignored as long as a URL
// was printed. gcloud runs with an empty configuration: no user account or
// impersonation.
func SignURL(t testing.TB, gcloud string, args []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gcloud, args...)
	cmd.Env = append(os.Environ(),
		"CLOUDSDK_CONFIG="+t.TempDir(),
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT=",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if u := signedURL.Find(stdout.Bytes()); u != nil {
		return string(u)
	}
	if u := signedURL.Find(stderr.Bytes()); u != nil {
		return string(u)
	}
	t.Fatalf("gcloud printed no signed URL (%v)\nstdout: %s\nstderr: %s", runErr, Redact(stdout.String()), Redact(stderr.String()))
	return ""
}
