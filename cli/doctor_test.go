package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
)

// doctor checks a deployment on the local stack (Pub/Sub, fake-gcs-server,
// the IAM Credentials emulator): a healthy configuration passes every
// check, and a broken one fails each broken check with its fix.
func TestDoctor(t *testing.T) {
	st := startLocalStack(t)
	ctx := t.Context()
	// A subscription without a dead-letter policy.
	if _, err := st.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  pubsubemu.SubscriptionName(st.Project, "no-dead-letters"),
		Topic: st.TopicName(st.Topology.Notifications),
	}); err != nil {
		t.Fatal(err)
	}
	// The metadata server, as Cloud Run's answers for the runtime account.
	const runtime = "linkissuer-worker@example-project.iam.gserviceaccount.com"
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" || r.URL.Path != "/computeMetadata/v1/instance/service-accounts/default/email" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(runtime))
	}))
	defer meta.Close()
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(meta.URL, "http://"))

	tp := st.Topology
	healthy := []string{
		"--project", st.Project, "--subscription", tp.WorkerSubscription + "," + tp.JobsSubscription,
		"--results-topic", tp.Results, "--errors-topic", tp.Errors, "--jobs-topic", tp.Jobs,
		"--allow", st.Bucket + "/public/**", "--service-account", st.IAM.Email(), "--iam-endpoint", st.IAM.Endpoint(),
		"--quota-fleet", "gs://" + st.Bucket + "/quota", "--timeout", "10s",
	}
	// Objects under the buckets' quota/ prefixes: the fleet probe leaves none.
	leftInFleet := func(t *testing.T) []string {
		t.Helper()
		var names []string
		for _, b := range []string{st.Bucket, "missing-fleet-bucket"} {
			objs, _, err := st.Storage.ListObjectsWithOptions(b, fakestorage.ListOptions{Prefix: "quota/"})
			if err != nil {
				continue // no such bucket: nothing in it
			}
			for _, o := range objs {
				names = append(names, b+"/"+o.Name)
			}
		}
		return names
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // lines (or line prefixes) of stdout
		notWant  string
	}{
		{
			name: "healthy", args: healthy, wantCode: ExitOK,
			want: []string{
				"ok   runtime service account from the metadata server",
				"ok   IAM Credentials API reachable at " + st.IAM.Endpoint(),
				"ok   signer " + st.IAM.Email() + " signs",
				"ok   subscription " + tp.WorkerSubscription + " (--subscription)",
				"ok   dead-letter policy of " + tp.JobsSubscription,
				"skip Pub/Sub service agent may forward dead letters of " + tp.WorkerSubscription + ": this Pub/Sub has no IAM (an emulator)",
				"ok   topic " + tp.Jobs + " (--jobs-topic)",
				"ok   bucket gs://" + st.Bucket,
				"ok   quota fleet gs://" + st.Bucket + "/quota (--quota-fleet)",
			},
			notWant: "FAIL",
		},
		{
			name:     "fleet bucket missing",
			args:     append(append([]string{}, healthy...), "--quota-fleet", "gs://missing-fleet-bucket/quota"),
			wantCode: ExitFailure,
			want: []string{
				"ok   signer " + st.IAM.Email() + " signs",
				"FAIL quota fleet gs://missing-fleet-bucket/quota (--quota-fleet): gcsfleet: write gs://missing-fleet-bucket/quota/members/doctor-",
				"     fix: create the bucket missing-fleet-bucket, or correct --quota-fleet",
			},
		},
		{
			name: "broken",
			args: append(append([]string{}, healthy...),
				"--subscription", "missing-sub,no-dead-letters", "--results-topic", "missing-results",
				"--allow", "missing-bucket", "--service-account", "someone-else@example-project.iam.gserviceaccount.com"),
			wantCode: ExitFailure,
			want: []string{
				"FAIL signer someone-else@example-project.iam.gserviceaccount.com signs: cannot sign as someone-else@",
				"     fix: grant roles/iam.serviceAccountTokenCreator on someone-else@example-project.iam.gserviceaccount.com to " + runtime,
				"FAIL subscription missing-sub (--subscription): subscription missing-sub does not exist",
				"FAIL dead-letter policy of no-dead-letters: no dead-letter topic",
				"     fix: gcloud pubsub subscriptions update no-dead-letters --dead-letter-topic TOPIC --max-delivery-attempts 5",
				"FAIL topic missing-results (--results-topic): topic missing-results does not exist",
				"     fix: create it (gcloud pubsub topics create missing-results) or correct --results-topic",
				"FAIL bucket gs://missing-bucket: bucket missing-bucket does not exist",
				"ok   topic " + tp.Errors + " (--errors-topic)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, out, errOut := emulateEnv(map[string]string{"STORAGE_EMULATOR_HOST": st.StorageHost})
			code := Doctor(ctx, env, tt.args)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			for _, w := range tt.want {
				if !hasLinePrefix(out.String(), w) {
					t.Errorf("no line starting %q", w)
				}
			}
			if tt.notWant != "" && strings.Contains(out.String(), tt.notWant) {
				t.Errorf("output has %q", tt.notWant)
			}
			if left := leftInFleet(t); len(left) != 0 {
				t.Errorf("objects left under the fleet prefix: %q", left)
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}
}

func hasLinePrefix(out, prefix string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}
