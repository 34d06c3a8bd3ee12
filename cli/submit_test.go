package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/schema"
)

// dryRun is what --dry-run prints.
type dryRun struct {
	Attributes map[string]string `json:"attributes"`
	Data       json.RawMessage   `json:"data"`
}

func TestSubmitBuildsJobs(t *testing.T) {
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": "proj"}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		check func(t *testing.T, j *schema.Job)
	}{
		{
			name: "prefix job from flags",
			args: []string{"gs://media/photos/", "--manifest", "gs://exports/p.csv", "--match", "**/*.jpg", "--duration", "7d",
				"--job-id", "j-1", "--notify-topic", "done", "--method", "head"},
			check: func(t *testing.T, j *schema.Job) {
				want := schema.Job{JobID: "j-1", Method: "HEAD", ExpiresIn: "7d", NotifyTopic: "projects/proj/topics/done",
					Source: schema.JobSource{Bucket: "media", Prefix: "photos/", Match: "**/*.jpg"}}
				if j.JobID != want.JobID || j.Method != want.Method || j.ExpiresIn != want.ExpiresIn || j.NotifyTopic != want.NotifyTopic ||
					j.Source.Bucket != "media" || j.Source.Prefix != "photos/" || j.Source.Match != "**/*.jpg" ||
					j.Output.Manifest == nil || j.Output.Manifest.Format != schema.FormatCSV {
					t.Errorf("job %+v", j)
				}
			},
		},
		{
			name:  "list job with topic output",
			args:  []string{"gs://media", "--objects", "-", "--output-topic", "projects/other/topics/links", "--job-id", "j-2"},
			stdin: "a.jpg\nb c.jpg\n",
			check: func(t *testing.T, j *schema.Job) {
				if len(j.Source.Objects) != 2 || j.Source.Objects[1].Name != "b c.jpg" || j.Output.Topic != "projects/other/topics/links" || j.Output.Manifest != nil {
					t.Errorf("job %+v", j)
				}
			},
		},
		{
			name: "S3-compatible source with its manifest on the same store",
			args: []string{"s3://media/in/", "--s3-endpoint", "http://127.0.0.1:9000", "--s3-region", "us-east-1",
				"--manifest", "s3://exports/in.csv", "--job-id", "j-s3"},
			check: func(t *testing.T, j *schema.Job) {
				want := schema.JobSource{Store: schema.StoreS3, Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", Bucket: "media", Prefix: "in/"}
				if !reflect.DeepEqual(j.Source, want) || j.Output.Manifest.URI != "s3://exports/in.csv" || j.Output.Manifest.Format != schema.FormatCSV {
					t.Errorf("job %+v", j)
				}
			},
		},
		{
			name: "response parameters",
			args: []string{"gs://media", "--manifest", "gs://exports/r.jsonl", "--job-id", "j-r",
				"--response-param", "response-content-disposition=attachment", "--response-param", "response-content-type=text/plain"},
			check: func(t *testing.T, j *schema.Job) {
				want := map[string]string{"response-content-disposition": "attachment", "response-content-type": "text/plain"}
				if !reflect.DeepEqual(j.ResponseParams, want) {
					t.Errorf("response_params %v, want %v", j.ResponseParams, want)
				}
			},
		},
		{
			name:  "JSON from stdin",
			args:  []string{"--file", "-"},
			stdin: `{"job_id":"j-3","source":{"bucket":"media"},"method":"GET","expires_in":"1h","output":{"manifest":{"uri":"gs://exp/m.jsonl","format":"jsonl"}}}`,
			check: func(t *testing.T, j *schema.Job) {
				if j.JobID != "j-3" || j.Output.Manifest.URI != "gs://exp/m.jsonl" {
					t.Errorf("job %+v", j)
				}
			},
		},
		{
			name: "submitter from the flag",
			args: []string{"gs://media", "--manifest", "gs://exports/s.jsonl", "--job-id", "j-s", "--submitter", "alice@example.com"},
			check: func(t *testing.T, j *schema.Job) {
				if j.Submitter != "alice@example.com" {
					t.Errorf("submitter %q, want alice@example.com", j.Submitter)
				}
			},
		},
		{
			name:  "a file's submitter wins over the default",
			args:  []string{"--file", "-"},
			stdin: `{"job_id":"j-4","source":{"bucket":"media"},"method":"GET","expires_in":"1h","output":{"manifest":{"uri":"gs://exp/m.jsonl","format":"jsonl"}},"submitter":"bob@example.com"}`,
			check: func(t *testing.T, j *schema.Job) {
				if j.Submitter != "bob@example.com" {
					t.Errorf("submitter %q, want bob@example.com", j.Submitter)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, Submit, tc.stdin, env, append(tc.args, "--dry-run")...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var out dryRun
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("%q: %v", stdout, err)
			}
			job, err := schema.ParseJob(context.Background(), out.Data)
			if err != nil {
				t.Fatal(err)
			}
			if out.Attributes[schema.AttrSchema] != schema.JobV1 || out.Attributes[schema.AttrJobID] != job.JobID {
				t.Errorf("attributes %v", out.Attributes)
			}
			tc.check(t, job)
		})
	}
}

func TestSubmitRefusesInvalidJobs(t *testing.T) {
	for _, tc := range []struct {
		name, stdin, want string
		args              []string
	}{
		{name: "unknown field", args: []string{"--file", "-"}, want: "unknown",
			stdin: `{"job_id":"j","source":{"bucket":"media"},"method":"GET","expires_in":"1h","outptu":{}}`},
		{name: "bad method", args: []string{"gs://media", "--manifest", "gs://exp/m", "--method", "FETCH"}, want: "method"},
		{name: "manifest and output topic", args: []string{"gs://media", "--manifest", "gs://exp/m", "--output-topic", "t"}, want: "not both"},
		{name: "neither manifest nor output topic", args: []string{"gs://media/x"}, want: "give --manifest gs://BUCKET/PATH, or --output-topic TOPIC"},
		{name: "response param not allowed", args: []string{"gs://media", "--manifest", "gs://exp/m", "--response-param", "response-cache-control=no-store"},
			want: "response_params.response-cache-control: store gcs honours only response-content-disposition, response-content-type"},
		{name: "response param without a value", args: []string{"gs://media", "--manifest", "gs://exp/m", "--response-param", "response-content-type"}, want: "want response-NAME=VALUE"},
		{name: "response param twice", args: []string{"gs://media", "--manifest", "gs://exp/m", "--response-param", "response-content-type=a/b", "--response-param", "response-content-type=c/d"}, want: "given twice"},
		{name: "bad job id", args: []string{"gs://media", "--manifest", "gs://exp/m", "--job-id", "../x"}, want: "job_id"},
		{name: "s3 source without a region", args: []string{"s3://media", "--manifest", "s3://exp/m"}, want: "--s3-region"},
		{name: "s3 manifest for a gcs source", args: []string{"gs://media", "--manifest", "s3://exp/m"}, want: "s3://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, Submit, tc.stdin, map[string]string{}, append(tc.args, "--topic", "jobs", "--project", "p")...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) || (tc.want != "not both" && strings.Contains(stderr, "not both")) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, ExitUsage, tc.want)
			}
		})
	}
}

// TestSubmitPublishes sends a job to the real Pub/Sub emulator and reads it
// back as the worker would.
func TestSubmitPublishes(t *testing.T) {
	client := emulatorTopic(t, "proj", "jobs")
	code, stdout, stderr := runCmd(t, Submit, "", map[string]string{"LINKISSUER_JOBS_TOPIC": "jobs", "LINKISSUER_PROJECT": "proj"},
		"gs://media/photos", "--manifest", "gs://exports/p.jsonl", "--job-id", "pub-1")
	if code != ExitOK || !strings.HasPrefix(stdout, "submitted job pub-1 as message ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	msgs := receive(t, client, "jobs-sub", 1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatal("no message received")
	}
	got := msgs[0]
	job, err := schema.ParseJob(context.Background(), got.Data)
	if err != nil {
		t.Fatal(err)
	}
	if job.JobID != "pub-1" || got.Attributes[schema.AttrSchema] != schema.JobV1 || !strings.Contains(stdout, got.MessageId) {
		t.Errorf("received %s with %v; stdout %q", job.JobID, got.Attributes, stdout)
	}
}

// TestSubmitWarnsAboutJobsState: a topic-output job needs the worker's
// $LINKISSUER_JOBS_STATE, and submit says so; a manifest job does not.
func TestSubmitWarnsAboutJobsState(t *testing.T) {
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": "proj"}
	code, _, stderr := runCmd(t, Submit, "", env, "gs://media", "--output-topic", "links", "--dry-run")
	if code != ExitOK || !strings.Contains(stderr, "LINKISSUER_JOBS_STATE") {
		t.Errorf("topic output: exit %d, stderr %q; want a note about $LINKISSUER_JOBS_STATE", code, stderr)
	}
	code, _, stderr = runCmd(t, Submit, "", env, "gs://media", "--manifest", "gs://exports/m.jsonl", "--dry-run")
	if code != ExitOK || strings.Contains(stderr, "LINKISSUER_JOBS_STATE") {
		t.Errorf("manifest output: exit %d, stderr %q; want no note", code, stderr)
	}
}

// TestDefaultJobIDsAreUnique: jobs built in the same second without
// --job-id get different IDs (they name the jobs' state objects).
func TestDefaultJobIDsAreUnique(t *testing.T) {
	now := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for range 100 {
		j := jobFlags{manifest: "gs://exports/m.jsonl", method: "GET", duration: "1h"}
		job, err := j.build(Env{}, "gs://media", now)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(job.JobID, "export-20261201T070000Z-") || seen[job.JobID] {
			t.Fatalf("job id %q: want export-20261201T070000Z-RANDOM, unique", job.JobID)
		}
		seen[job.JobID] = true
	}
}

// The submitter defaults to what the environment says about the caller,
// most specific first.
func TestSubmitterDefault(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.json")
	if err := os.WriteFile(key, []byte(`{"type":"service_account","client_email":"sa@p.iam.gserviceaccount.com"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	gcloud := filepath.Join(dir, "gcloud")
	if err := os.MkdirAll(filepath.Join(gcloud, "configurations"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gcloud, "active_config"), []byte("work\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gcloud, "configurations", "config_work"), []byte("[core]\nproject = p\naccount = carol@example.com\n\n[compute]\naccount = no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "LINKISSUER_SUBMITTER", env: map[string]string{"LINKISSUER_SUBMITTER": "team-mail", "CLOUDSDK_CORE_ACCOUNT": "x@example.com"}, want: "team-mail"},
		{name: "CLOUDSDK_CORE_ACCOUNT", env: map[string]string{"CLOUDSDK_CORE_ACCOUNT": "x@example.com", "GOOGLE_APPLICATION_CREDENTIALS": key}, want: "x@example.com"},
		{name: "service-account key", env: map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": key, "CLOUDSDK_CONFIG": gcloud}, want: "sa@p.iam.gserviceaccount.com"},
		{name: "gcloud active configuration", env: map[string]string{"CLOUDSDK_CONFIG": gcloud}, want: "carol@example.com"},
		{name: "unknown", env: map[string]string{"HOME": dir}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := Env{Getenv: func(k string) string { return tc.env[k] }}
			if got := callerAccount(env); got != tc.want {
				t.Errorf("callerAccount = %q, want %q", got, tc.want)
			}
		})
	}
}
