package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// Every command refuses a LINKISSUER_* variable that does not parse, naming
// it, before it does anything else (exit 2). Before parseFlags these values
// were dropped and the built-in default used silently.
func TestInvalidEnvironmentIsAUsageError(t *testing.T) {
	tests := []struct {
		name    string
		command Command
		args    []string
		env     map[string]string
		wantVar string
	}{
		{name: "worker duration", command: Worker, args: []string{"--subscription", "s"}, env: map[string]string{"LINKISSUER_GRACE": "soon"}, wantVar: "LINKISSUER_GRACE"},
		{name: "worker int", command: Worker, args: []string{"--subscription", "s"}, env: map[string]string{"LINKISSUER_MAX_OUTSTANDING": "lots"}, wantVar: "LINKISSUER_MAX_OUTSTANDING"},
		{name: "serve bool", command: Serve, env: map[string]string{"LINKISSUER_SYNC_LINKS": "yes please"}, wantVar: "LINKISSUER_SYNC_LINKS"},
		{name: "serve handler timeout", command: Serve, env: map[string]string{"LINKISSUER_HANDLER_TIMEOUT": "-"}, wantVar: "LINKISSUER_HANDLER_TIMEOUT"},
		{name: "sign keyless bool", command: Sign, args: []string{"gs://b/o"}, env: map[string]string{"LINKISSUER_KEYLESS": "yes"}, wantVar: "LINKISSUER_KEYLESS"},
		{name: "sign float", command: Sign, args: []string{"gs://b/o"}, env: map[string]string{"LINKISSUER_SIGN_RATE_CEILING": "NaN"}, wantVar: "LINKISSUER_SIGN_RATE_CEILING"},
		{name: "form keyless bool", command: Form, args: []string{"gs://b/k"}, env: map[string]string{"LINKISSUER_KEYLESS": "si"}, wantVar: "LINKISSUER_KEYLESS"},
		{name: "export int", command: Export, args: []string{"gs://b/p/"}, env: map[string]string{"LINKISSUER_CONCURRENCY": "8x"}, wantVar: "LINKISSUER_CONCURRENCY"},
		{name: "emulate float", command: Emulate, args: []string{"iam"}, env: map[string]string{"LINKISSUER_IAM_QUOTA": "fast"}, wantVar: "LINKISSUER_IAM_QUOTA"},
		{name: "emulate uint", command: Emulate, args: []string{"iam"}, env: map[string]string{"LINKISSUER_IAM_SEED": "-1"}, wantVar: "LINKISSUER_IAM_SEED"},
		{name: "emulate duration", command: Emulate, args: []string{"iam"}, env: map[string]string{"LINKISSUER_IAM_LATENCY": "1 fortnight"}, wantVar: "LINKISSUER_IAM_LATENCY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := Env{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr, Getenv: func(k string) string { return tt.env[k] }}
			if code := tt.command(t.Context(), env, tt.args); code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitUsage, stderr.String())
			}
			if want := "$" + tt.wantVar + "=" + `"` + tt.env[tt.wantVar] + `"`; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr does not name %s:\n%s", want, stderr.String())
			}
		})
	}
}

func TestEnvLookup(t *testing.T) {
	env := Env{Getenv: func(k string) string {
		return map[string]string{"ON": "1", "OFF": "false", "BAD": "maybe", "D": "7d", "N": " 12 "}[k]
	}}
	for _, tt := range []struct {
		name string
		got  func() (any, error)
		want any
	}{
		{name: "bool 1", got: func() (any, error) { return envLookup(env, "ON", false, parseEnvBool) }, want: true},
		{name: "bool false", got: func() (any, error) { return envLookup(env, "OFF", true, parseEnvBool) }, want: false},
		{name: "unset keeps default", got: func() (any, error) { return envLookup(env, "UNSET", 5, parseEnvInt) }, want: 5},
		{name: "int with spaces", got: func() (any, error) { return envLookup(env, "N", 0, parseEnvInt) }, want: 12},
		{name: "days", got: func() (any, error) { return envLookup(env, "D", time.Duration(0), ParseDuration) }, want: 7 * 24 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	_, err := envLookup(env, "BAD", false, parseEnvBool)
	var ee *EnvError
	if !errors.As(err, &ee) || ee.Var != "BAD" || !errors.Is(err, errNotBool) {
		t.Fatalf("BAD: got %v, want an *EnvError naming BAD", err)
	}
}
