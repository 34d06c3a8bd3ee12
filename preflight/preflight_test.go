package preflight

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeTopics answers LookupTopic with a fixed error per topic.
type fakeTopics map[string]error

func (f fakeTopics) LookupTopic(_ context.Context, name string) error { return f[name] }

// Every outcome prints as one line, failures with their fix beneath, and
// Err reports exactly the failures.
func TestRunWriteErr(t *testing.T) {
	topics := fakeTopics{
		"gone":   status.Error(codes.NotFound, "Resource not found"),
		"denied": status.Error(codes.PermissionDenied, "User not authorized"),
		"down":   status.Error(codes.Unavailable, "connection refused"),
	}
	results := Run(context.Background(), 0,
		Topic(topics, "--results-topic", "ok-topic", ""),
		Topic(topics, "--results-topic", "gone", ""),
		Topic(topics, "--errors-topic", "denied", "w@p.iam.gserviceaccount.com"),
		Topic(topics, "--jobs-topic", "down", ""),
		Check{Name: "not here", Run: func(context.Context) error { return Skipf("no metadata server") }},
		Check{Name: "plain", Run: func(context.Context) error { return errors.New("boom") }},
	)
	var b strings.Builder
	if err := Write(&b, results); err != nil {
		t.Fatal(err)
	}
	want := `ok   topic ok-topic (--results-topic)
FAIL topic gone (--results-topic): topic gone does not exist
     fix: create it (gcloud pubsub topics create gone) or correct --results-topic
FAIL topic denied (--errors-topic): topic denied: permission denied
     fix: grant roles/pubsub.publisher on topic denied to w@p.iam.gserviceaccount.com
FAIL topic down (--jobs-topic): topic down: Pub/Sub is unreachable: rpc error: code = Unavailable desc = connection refused
     fix: check the network path to Pub/Sub (or $PUBSUB_EMULATOR_HOST when using an emulator)
skip not here: no metadata server
FAIL plain: boom
`
	if got := b.String(); got != want {
		t.Errorf("Write:\n%s\nwant:\n%s", got, want)
	}
	err := Err(results)
	var ce *CheckError
	if !errors.As(err, &ce) || strings.Count(err.Error(), "\n") != 3 {
		t.Errorf("Err = %v, want the four failures", err)
	}
	if Err(results[:1]) != nil || Err(results[4:5]) != nil {
		t.Error("ok and skip are not failures")
	}
}
