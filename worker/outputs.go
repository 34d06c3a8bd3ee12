package worker

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/schema"
)

// Logical topic names that Outputs use; the Publisher maps them to real
// topics.
const (
	TopicResults = "results"
	TopicErrors  = "errors"
	TopicJobs    = "jobs"
)

// LinkOutput encodes a linkissuer.link.v1 message for the results topic.
func LinkOutput(l *schema.Link) (Output, error) {
	data, err := l.Data()
	if err != nil {
		return Output{}, err
	}
	return Output{Topic: TopicResults, Data: data, Attributes: l.Attributes()}, nil
}

// DeadLetters returns the DeadLetterFunc that writes linkissuer.deadletter.v1
// messages to the errors topic, stamped with workerID.
func DeadLetters(workerID string, now func() time.Time) DeadLetterFunc {
	if now == nil {
		now = time.Now
	}
	return func(m *Message, code failure.Code, err error) (Output, error) {
		d := schema.NewDeadLetter(schema.Original{
			MessageID:    m.ID,
			Attributes:   m.Attributes,
			Data:         m.Data,
			Subscription: m.Subscription,
		}, err, code, workerID, now())
		data, merr := json.Marshal(d)
		if merr != nil {
			return Output{}, fmt.Errorf("encode dead letter: %w", merr)
		}
		return Output{Topic: TopicErrors, Data: data, Attributes: d.Attributes()}, nil
	}
}
