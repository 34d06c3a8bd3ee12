package cli

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/linkissuer/linkissuer/internal/localstack"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/internal/slowtest"
)

// exports parses the `export NAME=value` lines of dev's output.
func exports(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = strings.Trim(v, "'")
		}
	}
	return m
}

// `linkissuer dev` starts the stack, prints shell lines that point clients
// at it, and stops it all on cancel.
func TestDevStartsPrintsAndStops(t *testing.T) {
	tests := []struct {
		name string
		args []string
		slow bool // starts the real Pub/Sub emulator (Java): see slowtest
	}{
		{name: "pstest", args: []string{"--bucket", "dev-bucket", "--project", "dev-project"}},
		{name: "real emulator", args: []string{"--bucket", "dev-bucket", "--project", "dev-project", "--real-pubsub"}, slow: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.slow {
				slowtest.Require(t)
			}
			t.Setenv(localstack.EnvPubSub, "")
			t.Setenv(localstack.EnvStorage, "")
			env, out, errOut := emulateEnv(nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			code := make(chan int, 1)
			go func() { code <- Dev(ctx, env, tc.args) }()

			deadline := time.After(90 * time.Second)
			for !strings.Contains(out.String(), "# Ctrl-C stops the stack.") {
				select {
				case c := <-code:
					if strings.Contains(errOut.String(), pubsubemu.ErrNotInstalled.Error()) {
						t.Skip(errOut.String())
					}
					t.Fatalf("dev exited with %d before it was up:\n%s\n%s", c, out, errOut)
				case <-deadline:
					t.Fatalf("dev not up within 90s:\n%s\n%s", out, errOut)
				case <-time.After(20 * time.Millisecond):
				}
			}
			printed := out.String()
			for _, line := range strings.Split(strings.TrimSpace(printed), "\n") {
				if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "export ") {
					t.Errorf("not a shell line: %q", line)
				}
			}
			// Job messages need a second worker: dev gives its command.
			jobsWorker := "#       linkissuer worker --subscription " + localstack.DefaultTopology().JobsSubscription + " --addr 127.0.0.1:8081\n"
			if !strings.Contains(printed, jobsWorker) || !strings.Contains(printed, "LINKISSUER_JOBS_STATE") {
				t.Errorf("no jobs worker command line (%q) or $LINKISSUER_JOBS_STATE note in:\n%s", jobsWorker, printed)
			}
			ex := exports(printed)
			want := map[string]string{
				"GOOGLE_CLOUD_PROJECT":     "dev-project",
				"LINKISSUER_ALLOW":         "dev-bucket",
				"LINKISSUER_SUBSCRIPTION":  localstack.DefaultTopology().WorkerSubscription,
				"LINKISSUER_RESULTS_TOPIC": localstack.DefaultTopology().Results,
				"LINKISSUER_ERRORS_TOPIC":  localstack.DefaultTopology().Errors,
				"LINKISSUER_JOBS_TOPIC":    localstack.DefaultTopology().Jobs,
			}
			for k, v := range want {
				if ex[k] != v {
					t.Errorf("export %s=%q, want %q", k, ex[k], v)
				}
			}
			for _, k := range []string{"PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "LINKISSUER_IAM_ENDPOINT", "LINKISSUER_SERVICE_ACCOUNT"} {
				if ex[k] == "" {
					t.Errorf("no export of %s:\n%s", k, printed)
				}
			}
			if got := os.Getenv("PUBSUB_EMULATOR_HOST"); got != ex["PUBSUB_EMULATOR_HOST"] {
				t.Errorf("this process's PUBSUB_EMULATOR_HOST is %q, the printed one %q", got, ex["PUBSUB_EMULATOR_HOST"])
			}

			// What was printed reaches the services, and the topology is there.
			client, err := pubsub.NewClient(ctx, ex["GOOGLE_CLOUD_PROJECT"])
			if err != nil {
				t.Fatal(err)
			}
			sub, err := client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{
				Subscription: pubsubemu.SubscriptionName("dev-project", ex["LINKISSUER_SUBSCRIPTION"]),
			})
			if err != nil {
				t.Fatalf("worker subscription: %v", err)
			}
			if dl := sub.GetDeadLetterPolicy().GetDeadLetterTopic(); dl != pubsubemu.TopicName("dev-project", localstack.DefaultTopology().DeadLetter) {
				t.Errorf("worker subscription's dead-letter topic %q", dl)
			}
			client.Close()
			for _, u := range []string{
				ex["STORAGE_EMULATOR_HOST"] + "/storage/v1/b/dev-bucket",
				ex["LINKISSUER_IAM_ENDPOINT"] + "service_accounts/v1/metadata/x509/" + ex["LINKISSUER_SERVICE_ACCOUNT"],
			} {
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %s", u, resp.Status)
				}
			}

			cancel()
			select {
			case c := <-code:
				if c != ExitOK {
					t.Errorf("dev exited with %d after cancel: %s", c, errOut)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("dev did not stop within 30s of cancel")
			}
			if !strings.HasSuffix(out.String(), "# local stack stopped\n") {
				t.Errorf("no stop line:\n%s", out)
			}
			for _, hostport := range []string{ex["PUBSUB_EMULATOR_HOST"], hostOf(ex["STORAGE_EMULATOR_HOST"]), hostOf(ex["LINKISSUER_IAM_ENDPOINT"])} {
				if conn, err := net.DialTimeout("tcp", hostport, time.Second); err == nil {
					conn.Close()
					t.Errorf("%s still listening after dev stopped", hostport)
				}
			}
			if got := os.Getenv("PUBSUB_EMULATOR_HOST"); got != "" {
				t.Errorf("PUBSUB_EMULATOR_HOST left at %q", got)
			}
		})
	}
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}

func TestDevUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unexpected argument", []string{"now"}},
		{"unknown flag", []string{"--nope"}},
		{"bad address", []string{"--storage-addr", "localhost"}},
		{"bad bucket", []string{"--bucket", "a b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, _ := runCmd(t, Dev, "", nil, tc.args...); code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
		})
	}
}

// A port that is taken fails dev cleanly.
func TestDevPortTaken(t *testing.T) {
	t.Setenv(localstack.EnvPubSub, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, errOut := runCmd(t, Dev, "", nil, "--iam-addr", ln.Addr().String())
	if code != ExitFailure || !strings.Contains(errOut, "address already in use") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:8085", "127.0.0.1:8085"},
		{"http://127.0.0.1:8085/", "http://127.0.0.1:8085/"},
		{"signer@p.iam.gserviceaccount.com", "signer@p.iam.gserviceaccount.com"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
	}
	for _, tc := range tests {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
