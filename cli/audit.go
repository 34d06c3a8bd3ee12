package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/sign"
)

// auditFlags configure the audit trail of `worker`, `serve`, `sign` and
// `export`.
type auditFlags struct {
	topic      string
	log        bool
	failClosed bool
}

func (a *auditFlags) register(fs *flag.FlagSet, env Env) {
	fs.StringVar(&a.topic, "audit-topic", envString(env, "LINKISSUER_AUDIT_TOPIC", ""), "topic for linkissuer.audit.v1 records, one per issued link (batched) [$LINKISSUER_AUDIT_TOPIC]")
	fs.BoolVar(&a.log, "audit-log", envString(env, "LINKISSUER_AUDIT_LOG", "") == "true", "write audit records as structured log entries too [$LINKISSUER_AUDIT_LOG=true]")
	fs.BoolVar(&a.failClosed, "audit-fail-closed", envString(env, "LINKISSUER_AUDIT_FAIL_CLOSED", "") == "true", "withhold a link whose audit record cannot be written (nack, 503) [$LINKISSUER_AUDIT_FAIL_CLOSED=true]")
}

// recorder builds the audit recorder, or nil when auditing is off; records
// are batched for up to delay. stop flushes the audit publisher and waits
// for the fail-open records being written.
func (a *auditFlags) recorder(client *pubsub.Client, cred *credentials, keyFile string, log *zap.Logger, delay time.Duration) (_ *audit.Recorder, stop func(), err error) {
	stop = func() {}
	var sinks audit.Sinks
	var pub *pubsub.Publisher
	if a.topic != "" {
		pub = client.Publisher(a.topic)
		pub.PublishSettings = audit.PublishSettings(delay)
		stop = pub.Stop
		sinks = append(sinks, audit.PubSubSink{Publisher: pub})
	}
	if a.log {
		sinks = append(sinks, audit.LogSink{Logger: log})
	}
	if len(sinks) == 0 {
		if a.failClosed {
			return nil, stop, errors.New("--audit-fail-closed needs --audit-topic or --audit-log")
		}
		return nil, stop, nil
	}
	c := cred.signer.Credential()
	rec, err := audit.New(sinks, audit.Options{
		Signer:     audit.Signer{Identity: c.Identity, Kind: c.Kind, KeyID: keyID(keyFile)},
		FailClosed: a.failClosed,
		Logger:     log,
	})
	if err != nil {
		stop()
		return nil, func() {}, err
	}
	return rec, func() {
		if pub != nil {
			pub.Stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = rec.Flush(ctx) // what is still unwritten then is lost, as fail-open allows
	}, nil
}

// commandAudit is the audit trail of a command run by hand (sign,
// export): records go to --audit-topic, a full topic name
// projects/P/topics/T or an ID in $LINKISSUER_PROJECT (else
// $GOOGLE_CLOUD_PROJECT), and with --audit-log to stderr.
type commandAudit struct {
	flags  *auditFlags
	client *pubsub.Client
	log    *zap.Logger
	stop   func()
}

// command sets up a command's audit trail, or returns nil when auditing
// is off.
func (a *auditFlags) command(ctx context.Context, env Env) (*commandAudit, error) {
	if a.topic == "" && !a.log {
		return nil, nil
	}
	log, err := logging.New(env.Stderr, "info")
	if err != nil {
		return nil, err
	}
	c := &commandAudit{flags: a, log: log, stop: func() {}}
	if a.topic != "" {
		project := envString(env, "LINKISSUER_PROJECT", env.Getenv("GOOGLE_CLOUD_PROJECT"))
		if rest, ok := strings.CutPrefix(a.topic, "projects/"); ok {
			project, _, _ = strings.Cut(rest, "/")
		}
		if project == "" {
			return nil, errors.New("--audit-topic: give the full name projects/P/topics/T, or set $LINKISSUER_PROJECT")
		}
		if c.client, err = pubsub.NewClient(ctx, project); err != nil {
			return nil, fmt.Errorf("pubsub client: %w", err)
		}
	}
	return c, nil
}

// recorder builds the recorder of the links signer signs (with the key
// file keyFile, if any); close flushes it.
func (c *commandAudit) recorder(signer sign.Signer, keyFile string) (*audit.Recorder, error) {
	rec, stop, err := c.flags.recorder(c.client, &credentials{signer: signer}, keyFile, c.log, 10*time.Millisecond)
	if err != nil {
		return nil, err
	}
	c.stop = stop
	return rec, nil
}

// close flushes the records and closes the client; a nil c does nothing.
func (c *commandAudit) close() {
	if c == nil {
		return
	}
	c.stop()
	if c.client != nil {
		c.client.Close()
	}
}

// recorderFunc is recorder as the service builder's audit hook.
func (a *auditFlags) recorderFunc(keyFile string) app.AuditFunc {
	return func(client *pubsub.Client, signer sign.Signer, log *zap.Logger, delay time.Duration) (*audit.Recorder, func(), error) {
		return a.recorder(client, &credentials{signer: signer}, keyFile, log, delay)
	}
}

// keyID is a JSON key file's private_key_id, or "" (PEM files, keyless,
// HMAC, unreadable files: loading the key already reported those).
func keyID(file string) string {
	if file == "" || !strings.HasSuffix(strings.ToLower(file), ".json") {
		return ""
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	var k struct {
		ID string `json:"private_key_id"`
	}
	if json.Unmarshal(data, &k) != nil {
		return ""
	}
	return k.ID
}
