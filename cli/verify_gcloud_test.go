package cli

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/internal/gcloudtest"
)

// gcloudSignature finds the signature of a gcloud URL (lower-case name).
var gcloudSignature = regexp.MustCompile(`x-goog-signature=([0-9a-f]+)`)

// flipDigit changes the last hex digit of the URL's signature.
func flipDigit(t *testing.T, raw string) string {
	t.Helper()
	m := gcloudSignature.FindStringSubmatchIndex(raw)
	if m == nil {
		t.Fatalf("no x-goog-signature in %s", gcloudtest.Redact(raw))
	}
	last := m[3] - 1
	d := byte('0')
	if raw[last] == '0' {
		d = '1'
	}
	return raw[:last] + string(d) + raw[last+1:]
}

// URLs made by `gcloud storage sign-url` (offline, with the conformance
// dummy key) are the most common V4 URLs in the wild: lower-case parameter
// names, several regions, awkward object names. verify --key-file calls
// them valid, for the method they were signed for, and tampered once one
// signature digit changes.
func TestVerifyGcloudURLs(t *testing.T) {
	gcloud := gcloudtest.Find(t)
	tests := []struct {
		name   string
		object string
		method string
		region string
		// args are verify's flags besides --key-file and the URL.
		args []string
	}{
		{name: "GET auto region", object: "reports/2026 Q3 – Zürich+Genève.pdf", method: "GET", region: "auto"},
		{name: "GET us-east1 reserved characters", object: "dir/a b~+%&=@!$'(),;é😀𝄞.txt", method: "GET", region: "us-east1"},
		{name: "HEAD europe-west1", object: "médias/a.jpg", method: "HEAD", region: "europe-west1", args: []string{"--method", "HEAD"}},
		{name: "PUT asia-northeast1 without --method", object: "upload/new file.bin", method: "PUT", region: "asia-northeast1"},
		{name: "DELETE with --method", object: "old/.hidden/..x", method: "DELETE", region: "us-central1", args: []string{"--method", "DELETE"}},
	}
	// (No '?', '*' or '[': gcloud reads them as wildcards and lists the
	// bucket, which needs an account.)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := gcloudtest.SignURL(t, gcloud, []string{
				"storage", "sign-url", "gs://test-bucket/" + tc.object,
				"--private-key-file=" + dummyKey,
				"--region=" + tc.region,
				"--duration=" + strconv.Itoa(int(time.Hour/time.Second)) + "s",
				"--http-verb=" + tc.method,
				"--format=value(signed_url)",
			})
			if !strings.Contains(raw, "x-goog-signature=") {
				t.Fatalf("gcloud no longer writes lower-case names: %s", gcloudtest.Redact(raw))
			}
			args := append([]string{"--key-file", dummyKey}, tc.args...)
			out := checkVerify(t, nil, "", ExitOK, "VALID", append(args, raw)...)
			if req := lineOf(out, "request:"); !strings.Contains(req, tc.method+" https://storage.googleapis.com/test-bucket/") {
				t.Errorf("request line %q does not name %s", req, tc.method)
			}
			if scope := lineOf(out, "scope:"); !strings.Contains(scope, "/"+tc.region+"/storage/goog4_request") {
				t.Errorf("scope line %q does not name region %s", scope, tc.region)
			}
			checkVerify(t, nil, "", ExitFailure, "TAMPERED", append(args, flipDigit(t, raw))...)
			if tc.method != "GET" {
				out := checkVerify(t, nil, "", ExitFailure, "WRONG METHOD", "--key-file", dummyKey, "--method", "GET", raw)
				if why := lineOf(out, "why:"); !strings.Contains(why, "for "+tc.method+", not GET") || !strings.Contains(why, "--method "+tc.method) {
					t.Errorf("why line %q does not name %s", why, tc.method)
				}
			}
		})
	}
}

// verify -h names RESUMABLE, the method that checks resumable-upload links,
// and no longer sends users to POST for them.
func TestVerifyHelpNamesResumable(t *testing.T) {
	_, out, errOut := runCmd(t, Verify, "", nil, "-h")
	help := out + errOut
	if !strings.Contains(help, "method is RESUMABLE") || strings.Contains(help, "POST for RESUMABLE") {
		t.Errorf("verify -h does not point at --method RESUMABLE:\n%s", help)
	}
}
