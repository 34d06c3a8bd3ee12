package jobs

import (
	"encoding/json"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/schema"
)

func TestTopicAllow(t *testing.T) {
	t.Parallel()
	a, err := NewTopicAllow([]string{"own-project", "projects/partner/topics/links"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topic string
		want  bool
	}{
		{topic: "projects/own-project/topics/anything", want: true},
		{topic: "projects/partner/topics/links", want: true},
		{topic: "projects/partner/topics/other"},
		{topic: "projects/stranger/topics/links"},
		{topic: "projects/own-project/topics/"},
		{topic: "projects/own-project/topics/a/b"},
		{topic: "projects/own-project-2/topics/x"},
		{topic: "own-project"},
	} {
		if got := a.Allows(tc.topic); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.topic, got, tc.want)
		}
	}
	var none *TopicAllow
	if none.Allows("projects/own-project/topics/x") {
		t.Error("a nil allow-list allows a topic")
	}
	for _, bad := range []string{"projects/p", "projects/p/topics/", "a/b", "p*"} {
		if _, err := NewTopicAllow([]string{bad}); err == nil {
			t.Errorf("NewTopicAllow(%q) accepted", bad)
		}
	}
}

// TestJobTopicsAreChecked: on the Pub/Sub emulator, a job naming a topic of
// another project, or a topic that does not exist, as its notify_topic or
// output.topic is dead-lettered once with the reason, before anything is
// signed (it used to be signed whole, then redelivered for publish_failed
// until Pub/Sub's dead-letter policy took it, with no reason).
func TestJobTopicsAreChecked(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newFixture(t)
	seedMedia(f)
	signer := &countingSigner{inner: f.signer}
	s.startWorker(f, func(o *Options) { o.Backends, o.StateURI = f.backends(signer, f.signer), "gs://exports/state" })
	missing := pubsubemu.TopicName(testProject, "no-such-topic")
	jobs := map[string]schema.ReasonCode{}
	submit := func(job *schema.Job, want schema.ReasonCode) {
		jobs[job.JobID] = want
		s.submit(job)
	}
	stranger := manifestJob("stranger", "gs://exports/t/stranger.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket})
	stranger.NotifyTopic = "projects/someone-else/topics/exfiltrate"
	submit(stranger, CodeTopicNotAllowed)
	gone := manifestJob("gone", "gs://exports/t/gone.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket})
	gone.NotifyTopic = missing
	submit(gone, CodeTopicNotFound)
	submit(&schema.Job{JobID: "gone-output", Source: schema.JobSource{Bucket: mediaBucket}, Method: "GET", ExpiresIn: "10m",
		Output: schema.JobOutput{Topic: missing}}, CodeTopicNotFound)
	submit(&schema.Job{JobID: "stranger-output", Source: schema.JobSource{Bucket: mediaBucket}, Method: "GET", ExpiresIn: "10m",
		Output: schema.JobOutput{Topic: "projects/someone-else/topics/links"}}, CodeTopicNotAllowed)

	got := map[string][]schema.ReasonCode{}
	s.Receive(s.Sub("errors"), 60*time.Second, func(m *pubsub.Message, stop func()) {
		var d schema.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Errorf("dead letter: %v", err)
			return
		}
		var job schema.Job
		if err := json.Unmarshal(d.OriginalData, &job); err != nil {
			t.Errorf("dead letter's original: %v", err)
			return
		}
		got[job.JobID] = append(got[job.JobID], d.ReasonCode)
		if len(got) == len(jobs) {
			time.AfterFunc(time.Second, stop) // catch duplicates
		}
	})
	for id, want := range jobs {
		if len(got[id]) != 1 || got[id][0] != want {
			t.Errorf("job %s dead-lettered with %v, want once with %s", id, got[id], want)
		}
	}
	if n := signer.calls.Load(); n != 0 {
		t.Errorf("refused jobs signed %d URLs", n)
	}
}
