package schema

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// parseCase runs a corpus case through the entry point its transport uses.
func parseCase(c *corpusCase) (*Input, error) {
	if c.Transport == "http" {
		ev, err := parseHTTP(c.Header(), c.Data)
		if err != nil {
			return nil, err
		}
		return &Input{Kind: KindCloudEvent, Event: ev}, nil
	}
	return Parse(context.Background(), c.Attributes, c.Data)
}

func TestGoodCorpus(t *testing.T) {
	for _, c := range loadCorpus(t, filepath.Join("testdata", "good")) {
		t.Run(c.File, func(t *testing.T) {
			in, err := parseCase(c)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := in.Kind.String(); got != c.Expect.Kind {
				t.Errorf("kind = %s, want %s", got, c.Expect.Kind)
			}
			switch in.Kind {
			case KindJob:
				if in.Job == nil || in.Job.Validate() != nil {
					t.Fatalf("job not returned or not valid: %+v", in.Job)
				}
				for k, v := range in.Job.Attributes() {
					if c.Attributes[k] != v {
						t.Errorf("attribute %s = %q in the file, Job.Attributes() gives %q", k, c.Attributes[k], v)
					}
				}
			default:
				ev := in.Event
				reason, ignore := ev.Ignore()
				if string(reason) != c.Expect.Ignore || ignore != (c.Expect.Ignore != "") {
					t.Errorf("Ignore() = %q, %v; want %q", reason, ignore, c.Expect.Ignore)
				}
				if ev.Bucket == "" || ev.Object == "" || ev.Generation <= 0 || ev.EventTime.IsZero() {
					t.Errorf("incomplete event: %+v", ev)
				}
				if err := ValidateObjectNameStrict("object", ev.Object); err != nil {
					t.Errorf("good example fails the strict name check: %v", err)
				}
			}
		})
	}
}

func TestBadCorpus(t *testing.T) {
	for _, c := range loadCorpus(t, filepath.Join("testdata", "bad")) {
		t.Run(c.File, func(t *testing.T) {
			if c.Expect.ReasonCode == "" || c.Description == "" {
				t.Fatal("bad case needs a description and expect.reason_code")
			}
			in, err := parseCase(c)
			switch c.Expect.Stage {
			case "parse":
				if err == nil {
					t.Fatalf("parsed without error: %+v", in)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not match ErrInvalid", err)
				}
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("error %T is not a *FieldError", err)
				}
				if got := CodeOf(err); string(got) != c.Expect.ReasonCode {
					t.Errorf("reason code = %s, want %s (error: %v)", got, c.Expect.ReasonCode, err)
				}
				if c.Expect.Field != "" && fe.Field != c.Expect.Field {
					t.Errorf("field = %q, want %q (error: %v)", fe.Field, c.Expect.Field, err)
				}
			case "policy":
				// Valid as a message; the worker's policy refuses it. The
				// part of that refusal this package owns is the strict
				// object-name check.
				if err != nil {
					t.Fatalf("policy-stage case must parse: %v", err)
				}
				if in.Event == nil {
					t.Fatal("policy-stage cases here are storage events")
				}
				strict := ValidateObjectNameStrict("object", in.Event.Object)
				if c.Expect.ReasonCode == string(CodeInvalidObjectName) {
					if CodeOf(strict) != CodeInvalidObjectName {
						t.Errorf("strict name check = %v, want invalid_object_name", strict)
					}
				} else if strict != nil {
					t.Errorf("strict name check refused %q: %v", in.Event.Object, strict)
				}
			default:
				t.Fatalf("expect.stage = %q, want parse or policy", c.Expect.Stage)
			}
		})
	}
}
