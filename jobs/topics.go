package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/worker"
)

// Reason codes of jobs refused for their topics.
const (
	// CodeTopicNotAllowed: notify_topic or output.topic is outside the
	// worker's topic allow-list.
	CodeTopicNotAllowed schema.ReasonCode = "topic_not_allowed"
	// CodeTopicNotFound: notify_topic or output.topic does not exist.
	CodeTopicNotFound schema.ReasonCode = "topic_not_found"
)

// TopicAllow is the set of full topic names a job may name as its
// notify_topic or output.topic: every topic of the listed projects, and the
// listed topics. Links and manifest URLs are credentials: without it, a job
// could have them sent to a stranger's topic.
type TopicAllow struct {
	projects map[string]bool
	topics   map[string]bool
}

// NewTopicAllow compiles entries, each a project ID (every topic of that
// project) or a full name projects/PROJECT/topics/TOPIC.
func NewTopicAllow(entries []string) (*TopicAllow, error) {
	a := &TopicAllow{projects: map[string]bool{}, topics: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case worker.IsTopicName(e):
			if _, _, ok := splitTopic(e); !ok {
				return nil, fmt.Errorf("topic %q: want projects/PROJECT/topics/TOPIC or a project ID", e)
			}
			a.topics[e] = true
		case strings.ContainsAny(e, "/ *"):
			return nil, fmt.Errorf("topic allow-list entry %q: want a project ID or projects/PROJECT/topics/TOPIC", e)
		default:
			a.projects[e] = true
		}
	}
	return a, nil
}

// Allows reports whether a job may publish to topic (a full name).
func (a *TopicAllow) Allows(topic string) bool {
	if a == nil {
		return false
	}
	project, _, ok := splitTopic(topic)
	return ok && (a.topics[topic] || a.projects[project])
}

func splitTopic(name string) (project, topic string, ok bool) {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return "", "", false
	}
	project, topic, ok = strings.Cut(rest, "/topics/")
	return project, topic, ok && project != "" && topic != "" && !strings.Contains(project, "/") && !strings.Contains(topic, "/")
}

// TopicChecker reports whether a topic exists. ok is false only when the
// topic is known not to exist; an unknown answer (no permission to look)
// is (true, nil). *worker.NamedTopics is one.
type TopicChecker interface {
	TopicExists(ctx context.Context, topic string) (ok bool, err error)
}

// checkTopics refuses a job whose notify_topic or output.topic is not
// allowed, and, when exists is set (once per job, before anything is
// signed), one whose topic does not exist. Refusals are permanent: the
// job is dead-lettered with the reason instead of signed and then
// redelivered for a publish that can never succeed.
func (r *Runner) checkTopics(ctx context.Context, job *schema.Job, exists bool) error {
	for _, tc := range []struct{ field, topic string }{
		{"notify_topic", job.NotifyTopic},
		{"output.topic", job.Output.Topic},
	} {
		if tc.topic == "" || !worker.IsTopicName(tc.topic) {
			continue
		}
		if !r.o.Topics.Allows(tc.topic) {
			return failure.Permanent(CodeTopicNotAllowed, fmt.Errorf("job %s: %s %s is not in this worker's topic allow-list ($LINKISSUER_JOBS_TOPICS)", job.JobID, tc.field, tc.topic))
		}
		if !exists || r.o.TopicChecker == nil {
			continue
		}
		ok, err := r.o.TopicChecker.TopicExists(ctx, tc.topic)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return fmt.Errorf("job %s: %s: %w", job.JobID, tc.field, err)
		}
		if !ok {
			return failure.Permanent(CodeTopicNotFound, fmt.Errorf("job %s: %s %s does not exist", job.JobID, tc.field, tc.topic))
		}
	}
	return nil
}
