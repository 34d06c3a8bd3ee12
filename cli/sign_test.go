package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/internal/vectors"
	"github.com/linkissuer/linkissuer/sign"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// dummyKey is the conformance vectors' service-account key, vendored in
// testdata/.
var dummyKey = vectors.Path(vectors.DummyKey)

// runCmd runs a command with the given stdin and environment.
func runCmd(t *testing.T, cmd Command, stdin string, envVars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string { return envVars[k] },
	}
	code = cmd(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestSignGolden(t *testing.T) {
	hmacEnv := map[string]string{"LINKISSUER_HMAC_SECRET": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	at := "--at=2019-02-01T09:00:00Z"
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		golden string
	}{
		{
			name:   "conformance simple GET as text",
			args:   []string{"--key-file", dummyKey, at, "--duration", "10s", "gs://test-bucket/test-object"},
			golden: "sign-text.golden",
		},
		{
			name: "json with headers, query and awkward names",
			args: []string{"--key-file", dummyKey, at, "--duration", "15m", "--output", "json",
				"--header", "X-Goog-If-Generation-Match: 12", "--query", "response-content-disposition=attachment; filename=\"a b.txt\"",
				"gs://test-bucket/dir/a b+c~%.txt", "gs://test-bucket/üñí/ç😀"},
			golden: "sign-json.golden",
		},
		{
			name:   "tsv with gsutil columns, resumable, virtual host",
			args:   []string{"--key-file", dummyKey, at, "--duration", "1d", "--output", "tsv", "--method", "resumable", "--style", "virtual", "gs://test-bucket/upload.bin"},
			golden: "sign-tsv.golden",
		},
		{
			name:   "S3 documentation example through AWS4 HMAC",
			env:    hmacEnv,
			args:   []string{"--hmac-access-id", "AKIAIOSFODNN7EXAMPLE", "--region", "us-east-1", "--at=2013-05-24T00:00:00Z", "--duration", "86400", "s3://examplebucket/test.txt"},
			golden: "sign-s3-doc.golden",
		},
		{
			name:   "GCS HMAC key against a MinIO-style endpoint",
			env:    hmacEnv,
			args:   []string{"--hmac-access-id", "GOOG1EXAMPLE", "--region", "us-east-1", "--endpoint", "http://127.0.0.1:9000", at, "--output", "json", "s3://bucket/key", "gs://test-bucket/obj"},
			golden: "sign-hmac-endpoint.golden",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, Sign, "", tc.env, tc.args...)
			if code != ExitOK {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			golden(t, tc.golden, out)
		})
	}
}

// The S3 documentation's expected URL must come out of the CLI verbatim.
func TestSignS3DocExample(t *testing.T) {
	const want = "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404\n"
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, Sign, "", nil, "--hmac-access-id", "AKIAIOSFODNN7EXAMPLE", "--hmac-secret-file", secret,
		"--region", "us-east-1", "--at", "2013-05-24T00:00:00Z", "--duration", "24h", "s3://examplebucket/test.txt")
	if code != ExitOK || out != want {
		t.Fatalf("exit %d\n got %q\nwant %q\nstderr %s", code, out, want, errOut)
	}
}

func TestSignBulkReportsBadLinesAndSignsTheRest(t *testing.T) {
	long := "gs://test-bucket/" + strings.Repeat("x", 1025)
	stdin := strings.Join([]string{
		"# comment lines and blank lines are skipped",
		"gs://test-bucket/one",
		"",
		"http://not-a-gs-url/x",
		"gs://Bad_Bucket/x",
		long,
		"gs://test-bucket/bad\xffutf8",
		"gs://test-bucket/two",
		"s3://bucket/needs-region",
		"gs://test-bucket/three",
	}, "\n")
	code, out, errOut := runCmd(t, Sign, stdin, nil, "--key-file", dummyKey, "--from-file", "-", "--output", "json", "--concurrency", "3")
	if code != ExitFailure {
		t.Errorf("exit %d, want %d (some lines failed)", code, ExitFailure)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 signed lines, got %d:\n%s", len(lines), out)
	}
	for i, obj := range []string{"one", "two", "three"} { // input order is kept
		if !strings.Contains(lines[i], `"resource":"gs://test-bucket/`+obj+`"`) {
			t.Errorf("line %d = %s, want resource %s", i, lines[i], obj)
		}
	}
	for _, want := range []string{
		"http://not-a-gs-url/x: invalid url",
		"gs://Bad_Bucket/x: invalid bucket",
		"longer than 1024 bytes",
		"not valid UTF-8",
		"s3://bucket/needs-region: invalid region",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestSignRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown method", nil, []string{"--key-file", dummyKey, "--method", "PATCH", "gs://b-1/o"}, `--method "PATCH"`},
		{"expiry too long", nil, []string{"--key-file", dummyKey, "--duration", "8d", "gs://b-1/o"}, "longer than the maximum"},
		{"expiry too short", nil, []string{"--key-file", dummyKey, "--duration", "0s", "gs://b-1/o"}, "shorter than the minimum"},
		{"bad duration", nil, []string{"--key-file", dummyKey, "--duration", "soon", "gs://b-1/o"}, "invalid duration"},
		{"unreadable key", nil, []string{"--key-file", "/nonexistent/key.json", "gs://b-1/o"}, "/nonexistent/key.json"},
		{"hmac secret only from file or env", nil, []string{"--hmac-access-id", "id", "gs://b-1/o"}, "LINKISSUER_HMAC_SECRET"},
		{"two credentials", map[string]string{"LINKISSUER_HMAC_SECRET": "s"}, []string{"--hmac-access-id", "id", "--key-file", dummyKey, "gs://b-1/o"}, "choose one"},
		{"bad header", nil, []string{"--key-file", dummyKey, "--header", "NoColon", "gs://b-1/o"}, "--header"},
		{"bad at", nil, []string{"--key-file", dummyKey, "--at", "yesterday", "gs://b-1/o"}, "RFC 3339"},
		{"bad output", nil, []string{"--key-file", dummyKey, "--output", "xml", "gs://b-1/o"}, "--output"},
		{"rsa cannot sign s3", nil, []string{"--key-file", dummyKey, "--region", "us-east-1", "s3://b-1/o"}, "not available in the AWS4 dialect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, Sign, "", tc.env, tc.args...)
			if code == ExitOK {
				t.Fatalf("exit 0, want failure; stdout %s", out)
			}
			if out != "" {
				t.Errorf("nothing should be signed, got %s", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := map[string]string{"90m": "1h30m0s", "7d": "168h0m0s", "12h": "12h0m0s", "30": "30s", "10s": "10s", "1h30m": "1h30m0s"}
	for in, want := range tests {
		d, err := ParseDuration(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1w", "abc"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

// Keyless signing goes through IAM signBlob (the emulator here) and the
// URLs verify with the emulator's public key.
func TestSignKeylessThroughIAMEmulator(t *testing.T) {
	srv := iamtest.Start(t, iamemu.Options{Email: "signer@test-project.iam.gserviceaccount.com"})
	var stdin strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&stdin, "gs://test-bucket/objects/%03d.bin\n", i)
	}
	code, out, errOut := runCmd(t, Sign, stdin.String(), nil, "--service-account", srv.Email(),
		"--iam-endpoint", srv.Endpoint(), "--from-file", "-", "--duration", "10m")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 50 {
		t.Fatalf("got %d URLs, want 50", len(lines))
	}
	for _, u := range lines {
		p, err := sign.ParseSignedURL(u, "GET", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyRSA(srv.PublicKey()); err != nil {
			t.Errorf("%s: %v", p.Object, err)
		}
	}
	// The keyless cap applies unless explicitly lifted.
	code, _, errOut = runCmd(t, Sign, "", nil, "--service-account", srv.Email(), "--iam-endpoint", srv.Endpoint(), "--duration", "13h", "gs://test-bucket/x")
	if code == ExitOK || !strings.Contains(errOut, "keyless maximum") {
		t.Errorf("13h keyless URL: exit %d, stderr %s", code, errOut)
	}
}
