package config

import (
	"errors"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the README's configuration tables")

// mapEnv is a Getenv over a map.
func mapEnv(m map[string]string) Getenv { return func(k string) string { return m[k] } }

// parseWorker registers a worker's flags with env and parses args.
func parseWorker(t *testing.T, env map[string]string, args ...string) *Worker {
	t.Helper()
	var w Worker
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	w.Register(fs, mapEnv(env))
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := CheckEnv(fs, mapEnv(env)); err != nil {
		t.Fatal(err)
	}
	return &w
}

// validWorker is the smallest environment a worker starts with.
var validWorker = map[string]string{
	"GOOGLE_CLOUD_PROJECT":     "p",
	"LINKISSUER_SUBSCRIPTION":  "sub",
	"LINKISSUER_RESULTS_TOPIC": "results",
	"LINKISSUER_ERRORS_TOPIC":  "errors",
	"LINKISSUER_ALLOW":         "media",
	"LINKISSUER_KEYLESS":       "true",
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

// Variables give the defaults; flags override them.
func TestWorkerFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*Worker) bool
	}{
		{name: "project from GOOGLE_CLOUD_PROJECT", env: validWorker, check: func(w *Worker) bool { return w.Project == "p" }},
		{name: "LINKISSUER_PROJECT wins", env: with(validWorker, "LINKISSUER_PROJECT", "q"), check: func(w *Worker) bool { return w.Project == "q" }},
		{name: "flag wins", env: validWorker, args: []string{"--project", "r"}, check: func(w *Worker) bool { return w.Project == "r" }},
		{name: "built-in default", env: validWorker, check: func(w *Worker) bool { return w.MaxOutstanding == 1000 && w.Grace == 8*time.Second }},
		{name: "int", env: with(validWorker, "LINKISSUER_MAX_OUTSTANDING", "7"), check: func(w *Worker) bool { return w.MaxOutstanding == 7 }},
		{name: "days", env: with(validWorker, "LINKISSUER_MAX_EXPIRY", "2d"), check: func(w *Worker) bool { return w.Policy.MaxExpiry == 48*time.Hour }},
		{name: "port", env: with(validWorker, "PORT", "9090"), check: func(w *Worker) bool { return w.Addr == ":9090" }},
		{name: "job state was env-only", env: with(validWorker, "LINKISSUER_JOBS_STATE", "gs://b/state"), check: func(w *Worker) bool { return w.Jobs.State == "gs://b/state" }},
		{name: "job shard size was env-only", env: with(validWorker, "LINKISSUER_JOBS_SHARD_SIZE", "500"), check: func(w *Worker) bool { return w.Jobs.ShardSize == 500 }},
		{name: "S3 store", env: with(validWorker, "LINKISSUER_S3_REGION", "us-east-1", "LINKISSUER_S3_ACCESS_ID", "id", "LINKISSUER_S3_SECRET", "s"),
			check: func(w *Worker) bool { return w.S3.Region == "us-east-1" && w.S3.AccessID == "id" && w.S3.Secret == "s" }},
		{name: "S3 key from the AWS pair", env: with(validWorker, "LINKISSUER_S3_REGION", "eu-west-1", "AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY", "aws"),
			check: func(w *Worker) bool { return w.S3.AccessID == "AKIA" && w.S3.Secret == "aws" }},
		{name: "linkissuer S3 key wins over AWS", env: with(validWorker, "LINKISSUER_S3_REGION", "eu-west-1", "LINKISSUER_S3_ACCESS_ID", "id", "LINKISSUER_S3_SECRET", "s", "AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY", "aws"),
			check: func(w *Worker) bool { return w.S3.AccessID == "id" && w.S3.Secret == "s" }},
		{name: "response params are comma-separated", env: with(validWorker, "LINKISSUER_RESPONSE_PARAMS", "response-a=1,response-b=2"),
			check: func(w *Worker) bool {
				return len(w.Policy.ResponseParams) == 2 && w.Policy.ResponseParams[1] == "response-b=2"
			}},
		{name: "instance from K_REVISION", env: with(validWorker, "K_REVISION", "rev-1", "HOSTNAME", "h"), check: func(w *Worker) bool { return w.Instance == "rev-1" }},
		{name: "quota fleet on an emulator", env: with(validWorker, "LINKISSUER_QUOTA_FLEET", "gs://b/q", "STORAGE_EMULATOR_HOST", "127.0.0.1:4443"),
			check: func(w *Worker) bool {
				return w.Cred.Keyless.Fleet == QuotaFleet{URL: "gs://b/q", EmulatorHost: "127.0.0.1:4443"}
			}},
		{name: "ADC locations", env: with(validWorker, "GOOGLE_APPLICATION_CREDENTIALS", "/adc.json", "CLOUDSDK_CONFIG", "/gc"),
			check: func(w *Worker) bool {
				return w.Cred.Keyless.CredentialsFile == "/adc.json" && w.Cred.Keyless.GcloudConfigDir == "/gc"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := parseWorker(t, tc.env, tc.args...)
			if !tc.check(w) {
				t.Errorf("got %+v", *w)
			}
		})
	}
}

// Every error names the flag and its variable, and Validate does not
// modify its input.
func TestWorkerValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // substrings of the error; none: valid
	}{
		{name: "valid", env: validWorker},
		{name: "negative outstanding", env: validWorker, args: []string{"--max-outstanding", "-1"},
			want: []string{"--max-outstanding / LINKISSUER_MAX_OUTSTANDING: must be > 0, got -1"}},
		{name: "no subscription", env: with(validWorker, "LINKISSUER_SUBSCRIPTION", ""),
			want: []string{"--subscription / LINKISSUER_SUBSCRIPTION: is required"}},
		{name: "no project", env: with(validWorker, "GOOGLE_CLOUD_PROJECT", ""),
			want: []string{"--project / LINKISSUER_PROJECT, GOOGLE_CLOUD_PROJECT: is required"}},
		{name: "every problem at once", env: with(validWorker, "LINKISSUER_ALLOW", "", "LINKISSUER_STREAMS", "0"),
			want: []string{"--allow / LINKISSUER_ALLOW: is empty", "--streams / LINKISSUER_STREAMS: must be > 0, got 0"}},
		{name: "zero grace", env: with(validWorker, "LINKISSUER_GRACE", "0s"), want: []string{"--grace / LINKISSUER_GRACE: must be > 0, got 0s"}},
		{name: "bad style", env: with(validWorker, "LINKISSUER_STYLE", "sideways"), want: []string{`--style / LINKISSUER_STYLE: want path, virtual or bound, got "sideways"`}},
		{name: "bad log level", env: with(validWorker, "LINKISSUER_LOG_LEVEL", "loud"), want: []string{`--log-level / LINKISSUER_LOG_LEVEL: want debug`}},
		{name: "bad response param", env: validWorker, args: []string{"--response-param", "x=1"}, want: []string{`--response-param / LINKISSUER_RESPONSE_PARAMS: "x=1"`}},
		{name: "no signer", env: with(validWorker, "LINKISSUER_KEYLESS", ""), want: []string{"no credentials"}},
		{name: "two signers", env: with(validWorker, "LINKISSUER_KEY_FILE", "k.json"), want: []string{"choose one of"}},
		{name: "hmac without secret", env: with(validWorker, "LINKISSUER_KEYLESS", "", "LINKISSUER_HMAC_ACCESS_ID", "GOOG1"), want: []string{"--hmac-access-id needs the secret"}},
		{name: "negative sign in flight", env: with(validWorker, "LINKISSUER_SIGN_IN_FLIGHT", "-4"), want: []string{"--sign-in-flight / LINKISSUER_SIGN_IN_FLIGHT: must not be negative"}},
		{name: "negative job concurrency", env: with(validWorker, "LINKISSUER_JOBS_CONCURRENCY", "-1"), want: []string{"--jobs-concurrency / LINKISSUER_JOBS_CONCURRENCY: must not be negative, got -1"}},
		{name: "S3 endpoint without region", env: with(validWorker, "LINKISSUER_S3_ENDPOINT", "http://127.0.0.1:9000"), want: []string{"--s3-region / LINKISSUER_S3_REGION: is required"}},
		{name: "S3 auto region", env: with(validWorker, "LINKISSUER_S3_REGION", "auto", "LINKISSUER_S3_ACCESS_ID", "id", "LINKISSUER_S3_SECRET", "s"), want: []string{`--s3-region / LINKISSUER_S3_REGION: "auto" is not an S3 region`}},
		{name: "S3 bound style", env: with(validWorker, "LINKISSUER_S3_REGION", "us-east-1", "LINKISSUER_S3_STYLE", "bound", "LINKISSUER_S3_ACCESS_ID", "id", "LINKISSUER_S3_SECRET", "s"), want: []string{"--s3-style / LINKISSUER_S3_STYLE"}},
		{name: "S3 without key", env: with(validWorker, "LINKISSUER_S3_REGION", "us-east-1"), want: []string{"--s3-access-id / LINKISSUER_S3_ACCESS_ID: no HMAC key"}},
		{name: "S3 id without secret", env: with(validWorker, "LINKISSUER_S3_REGION", "us-east-1", "LINKISSUER_S3_ACCESS_ID", "id"), want: []string{"--s3-secret-file / LINKISSUER_S3_SECRET_FILE: access ID id has no secret"}},
		{name: "the signing key is not the store key", env: with(validWorker, "LINKISSUER_S3_REGION", "us-east-1", "LINKISSUER_HMAC_SECRET", "s"), want: []string{"--s3-access-id / LINKISSUER_S3_ACCESS_ID: no HMAC key"}},
		{name: "link cache without room", env: with(validWorker, "LINKISSUER_LINK_CACHE_SIZE", "0"), want: []string{"--link-cache-size / LINKISSUER_LINK_CACHE_SIZE: must be > 0 with the cache on, got 0"}},
		{name: "link cache off needs no room", env: with(validWorker, "LINKISSUER_LINK_CACHE_SIZE", "0", "LINKISSUER_LINK_CACHE_WINDOW", "0s")},
		{name: "quota fleet", env: with(validWorker, "LINKISSUER_QUOTA_FLEET", "gs://my-bucket/linkissuer/quota")},
		{name: "quota fleet not gs", env: with(validWorker, "LINKISSUER_QUOTA_FLEET", "my-bucket/quota"),
			want: []string{`--quota-fleet / LINKISSUER_QUOTA_FLEET: "my-bucket/quota" is not gs://BUCKET/PREFIX`}},
		{name: "quota fleet with a key file", env: with(validWorker, "LINKISSUER_KEYLESS", "", "LINKISSUER_KEY_FILE", "k.json", "LINKISSUER_QUOTA_FLEET", "gs://my-bucket/q"),
			want: []string{"--quota-fleet / LINKISSUER_QUOTA_FLEET: is for keyless signing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := parseWorker(t, tc.env, tc.args...)
			before := *w
			err := w.Validate()
			if w.Project != before.Project || w.MaxOutstanding != before.MaxOutstanding || w.S3 != before.S3 {
				t.Errorf("Validate modified its input: %+v, was %+v", *w, before)
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate = %v\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

// A named setting's problem is an *Error carrying the setting.
func TestValidateErrorNamesSetting(t *testing.T) {
	w := parseWorker(t, validWorker, "--streams", "-2")
	var e *Error
	if err := w.Validate(); !errors.As(err, &e) || e.Setting.Flag != "streams" || len(e.Setting.Env) != 1 || e.Setting.Env[0] != "LINKISSUER_STREAMS" {
		t.Fatalf("Validate = %v, want an *Error for --streams / LINKISSUER_STREAMS", err)
	}
}

func TestServeValidate(t *testing.T) {
	valid := with(validWorker, "LINKISSUER_SUBSCRIPTION", "", "LINKISSUER_PUSH_EMAILS", "push@p.iam.gserviceaccount.com")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "valid", env: valid},
		{name: "insecure needs no emails", env: with(valid, "LINKISSUER_PUSH_EMAILS", ""), args: []string{"--insecure-skip-auth"}},
		{name: "no emails", env: with(valid, "LINKISSUER_PUSH_EMAILS", ""), want: "--push-emails / LINKISSUER_PUSH_EMAILS: is empty"},
		{name: "not an email", env: with(valid, "LINKISSUER_PUSH_EMAILS", "push"), want: `--push-emails / LINKISSUER_PUSH_EMAILS: "push" is not an email`},
		{name: "handler timeout", env: with(valid, "LINKISSUER_HANDLER_TIMEOUT", "0s"), want: "--handler-timeout / LINKISSUER_HANDLER_TIMEOUT: must be > 0"},
		{name: "body bound", env: valid, args: []string{"--max-body-bytes", "0"}, want: "--max-body-bytes / LINKISSUER_MAX_BODY_BYTES: must be > 0, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Serve
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			s.Register(fs, mapEnv(tc.env))
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExportValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "valid", env: map[string]string{"LINKISSUER_HMAC_ACCESS_ID": "GOOG1", "LINKISSUER_HMAC_SECRET": "s"}},
		{name: "negative concurrency", env: map[string]string{"LINKISSUER_KEYLESS": "1", "LINKISSUER_CONCURRENCY": "-3"}, want: "--concurrency / LINKISSUER_CONCURRENCY: must not be negative (0 is the default), got -3"},
		{name: "style has no variable", env: map[string]string{"LINKISSUER_KEYLESS": "1", "LINKISSUER_STYLE": "virtual"}, args: []string{"--style", "up"}, want: `--style: want path, virtual or bound, got "up"`},
		{name: "quota fleet", env: map[string]string{"LINKISSUER_KEYLESS": "1"}, args: []string{"--quota-fleet", "gs://my-bucket/q"}},
		{name: "quota fleet bucket", env: map[string]string{"LINKISSUER_KEYLESS": "1"}, args: []string{"--quota-fleet", "gs://B/q"}, want: `--quota-fleet / LINKISSUER_QUOTA_FLEET: "gs://B/q": "B" is not a bucket name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e Export
			fs := flag.NewFlagSet("export", flag.ContinueOnError)
			e.Register(fs, mapEnv(tc.env))
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := e.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// A variable that does not parse is reported by name; the flag keeps its
// built-in default.
func TestCheckEnv(t *testing.T) {
	env := with(validWorker, "LINKISSUER_MAX_OUTSTANDING", "lots", "LINKISSUER_TRACE", "yes please", "LINKISSUER_GRACE", "soon")
	var w Worker
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	w.Register(fs, mapEnv(env))
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	err := CheckEnv(fs, mapEnv(env))
	for _, v := range []string{"LINKISSUER_MAX_OUTSTANDING", "LINKISSUER_TRACE", "LINKISSUER_GRACE"} {
		if !strings.Contains(err.Error(), "$"+v+"=") {
			t.Errorf("CheckEnv = %v, does not name %s", err, v)
		}
	}
	var ee *EnvError
	if !errors.As(err, &ee) {
		t.Errorf("CheckEnv = %v, want *EnvError", err)
	}
	if w.MaxOutstanding != 1000 {
		t.Errorf("max-outstanding %d, want the built-in 1000", w.MaxOutstanding)
	}
}

func TestGcloudConfigDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		goos string
		want string
	}{
		{name: "CLOUDSDK_CONFIG", env: map[string]string{"CLOUDSDK_CONFIG": "/c", "HOME": "/h"}, goos: "linux", want: "/c"},
		{name: "home", env: map[string]string{"HOME": "/h"}, goos: "linux", want: filepath.Join("/h", ".config", "gcloud")},
		{name: "windows", env: map[string]string{"APPDATA": `C:\A`, "HOME": "/h"}, goos: "windows", want: filepath.Join(`C:\A`, "gcloud")},
		{name: "nothing", goos: "linux", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcloudConfigDir(mapEnv(tc.env), tc.goos); got != tc.want {
				t.Errorf("gcloudConfigDir = %q, want %q", got, tc.want)
			}
		})
	}
}
