package cli

import (
	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/config"

	"regexp"
	"strings"
	"testing"

	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
)

// goIdentifier matches a Go field or type name such as AllowLongKeyless,
// which means nothing to someone at a command line.
var goIdentifier = regexp.MustCompile(`\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+\b`)

// TestMessagesNameFlags checks that configuration errors name the flag to
// change, not the Go field behind it.
func TestMessagesNameFlags(t *testing.T) {
	emu := iamtest.Start(t, iamemu.Options{})
	keyless := []string{"--service-account", emu.Email(), "--iam-endpoint", emu.Endpoint()}
	for _, tc := range []struct {
		name string
		cmd  Command
		args []string
		want string
	}{
		{name: "sign beyond the keyless cap", cmd: Sign, args: append(keyless, "--duration", "13h", "gs://bkt/o"), want: "--allow-long-keyless lifts the cap"},
		{name: "form beyond the keyless cap", cmd: Form, args: append(keyless, "--duration", "13h", "gs://bkt/o"), want: "--allow-long-keyless lifts the cap"},
		{name: "negative in-flight", cmd: Sign, args: append(keyless, "--sign-in-flight", "-1", "gs://bkt/o"), want: "--sign-in-flight / LINKISSUER_SIGN_IN_FLIGHT: must not be negative (0 is the default, 64), got -1"},
		{name: "negative ceiling", cmd: Sign, args: append(keyless, "--sign-rate-ceiling", "-5", "gs://bkt/o"), want: "--sign-rate-ceiling / LINKISSUER_SIGN_RATE_CEILING: must not be negative (0 is no cap), got -5"},
		{name: "negative quota", cmd: Sign, args: append(keyless, "--sign-quota", "-60000", "gs://bkt/o"), want: "--sign-quota / LINKISSUER_SIGN_QUOTA: must not be negative (0 is unknown), got -60000"},
		{name: "serve without push emails", cmd: Serve, args: []string{"--allow", "b"}, want: "--push-emails / LINKISSUER_PUSH_EMAILS: is empty"},
		{name: "serve with a bad push email", cmd: Serve, args: []string{"--allow", "b", "--push-emails", "pubsub"}, want: `--push-emails / LINKISSUER_PUSH_EMAILS: "pubsub" is not an email`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, tc.cmd, "", nil, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
			if id := goIdentifier.FindString(errOut); id != "" {
				t.Errorf("stderr names the Go identifier %s:\n%s", id, errOut)
			}
		})
	}
}

// TestSignVirtualStyleOnIP: an IP endpoint has no subdomains, so virtual
// style is refused with a reason instead of printing
// http://my-bucket.127.0.0.1:4443/... links.
func TestSignVirtualStyleOnIP(t *testing.T) {
	keyFile := writeKeyFile(t, "signer@p.iam.gserviceaccount.com")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{name: "endpoint flag", args: []string{"--style", "virtual", "--endpoint", "http://127.0.0.1:4443"}},
		{name: "emulator host", env: map[string]string{"STORAGE_EMULATOR_HOST": "127.0.0.1:4443"}, args: []string{"--style", "virtual"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, Sign, "", tc.env, append(append([]string{"--key-file", keyFile}, tc.args...), "gs://my-bucket/a.txt")...)
			if code != ExitUsage || out != "" {
				t.Errorf("exit %d, stdout %q: want a refusal", code, out)
			}
			if !strings.Contains(errOut, "is an IP address") || !strings.Contains(errOut, "use path style") {
				t.Errorf("stderr does not say why:\n%s", errOut)
			}
		})
	}
	// Path style on the same endpoint still works.
	code, out, errOut := runCmd(t, Sign, "", nil, "--key-file", keyFile, "--endpoint", "http://127.0.0.1:4443", "gs://my-bucket/a.txt")
	if code != ExitOK || !strings.HasPrefix(out, "http://127.0.0.1:4443/my-bucket/a.txt?") {
		t.Errorf("path style: exit %d, %s%s", code, out, errOut)
	}
}

// TestUniverseDomain checks --universe-domain and
// $GOOGLE_CLOUD_UNIVERSE_DOMAIN wherever gs:// links are built: sign, form,
// and the worker/serve/export options.
func TestUniverseDomain(t *testing.T) {
	keyFile := writeKeyFile(t, "signer@p.iam.gserviceaccount.com")
	universe := map[string]string{"GOOGLE_CLOUD_UNIVERSE_DOMAIN": "example-universe.com"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "default", want: "https://storage.googleapis.com/bkt/o?"},
		{name: "environment", env: universe, want: "https://storage.example-universe.com/bkt/o?"},
		{name: "flag", args: []string{"--universe-domain", "other.example"}, want: "https://storage.other.example/bkt/o?"},
		{name: "flag over environment", env: universe, args: []string{"--universe-domain", "other.example"}, want: "https://storage.other.example/bkt/o?"},
		{name: "virtual style", env: universe, args: []string{"--style", "virtual"}, want: "https://bkt.storage.example-universe.com/o?"},
		{name: "explicit endpoint wins", env: universe, args: []string{"--endpoint", "https://private.example"}, want: "https://private.example/bkt/o?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, Sign, "", tc.env, append(append([]string{"--key-file", keyFile}, tc.args...), "gs://bkt/o")...)
			if code != ExitOK || !strings.HasPrefix(out, tc.want) {
				t.Errorf("exit %d, got %s%s, want %s...", code, out, errOut, tc.want)
			}
		})
	}
	t.Run("worker, serve and export options", func(t *testing.T) {
		for _, cmd := range []string{"worker", "serve", "export"} {
			fs := newFlagSet(Env{Stderr: &strings.Builder{}, Getenv: func(k string) string { return universe[k] }}, cmd, "")
			getenv := func(k string) string { return universe[k] }
			var u *config.URL
			switch cmd {
			case "export":
				var c config.Export
				c.Register(fs, getenv)
				u = &c.URL
			case "serve":
				var c config.Serve
				c.Register(fs, getenv)
				u = &c.URL
			default:
				var c config.Worker
				c.Register(fs, getenv)
				u = &c.URL
			}
			o, err := app.SignOptions(u)
			if err != nil {
				t.Fatal(err)
			}
			if o.Endpoint.UniverseDomain != "example-universe.com" {
				t.Errorf("%s: universe domain %q", cmd, o.Endpoint.UniverseDomain)
			}
		}
	})
}
