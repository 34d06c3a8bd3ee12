package cli

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's commands for taking links back exist: every flag of a
// `linkissuer revoke` line is one of revoke's flags, and every command
// `linkissuer verify` prints under "take back:" is in the README's table.
func TestTakingLinksBackDocs(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "### Revoking durable links")
	end := strings.Index(readme, "## `linkissuer verify`")
	if start < 0 || end < start || !strings.Contains(readme[start:end], "## Taking links back") {
		t.Fatal(`README lacks "### Revoking durable links" and "## Taking links back" before "## ` + "`linkissuer verify`" + `"`)
	}
	docs := readme[start:end]

	env, _, errOut := emulateEnv(nil)
	Revoke(context.Background(), env, []string{"-h"})
	usage := errOut.String()
	lines := regexp.MustCompile("linkissuer revoke [^`\\n]*").FindAllString(docs, -1)
	if len(lines) < 6 {
		t.Fatalf("%d revoke commands in the docs, want at least 6", len(lines))
	}
	for _, l := range lines {
		for _, f := range regexp.MustCompile(`(^|\s)--([a-z-]+)`).FindAllStringSubmatch(l, -1) {
			if !strings.Contains(usage, "  -"+f[2]+" ") && !strings.Contains(usage, "  -"+f[2]+"\n") {
				t.Errorf("%q: revoke has no flag --%s", l, f[2])
			}
		}
	}
	for _, cmd := range []string{
		"gcloud storage hmac update ACCESS_ID --deactivate",
		"gcloud iam service-accounts keys disable KEY_ID --iam-account=SA",
		"gcloud iam service-accounts keys delete KEY_ID --iam-account=SA",
		"gcloud storage buckets remove-iam-policy-binding gs://BUCKET --member=serviceAccount:SA --role=",
	} {
		if !strings.Contains(docs, cmd) {
			t.Errorf("the docs lack %q", cmd)
		}
	}
	// verify's "take back:" templates, with the README's placeholders.
	src, err := os.ReadFile("verify.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"(gcloud [^%"]+)%s`).FindAllStringSubmatch(string(src), -1) {
		if !strings.Contains(docs, m[1]) {
			t.Errorf("verify prints %q, the docs do not name it", m[1])
		}
	}
}
