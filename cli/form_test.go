package cli

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/internal/vectors"
)

// formOutput is `form --output json`, decoded.
type formOutput struct {
	URL       string            `json:"url"`
	Fields    map[string]string `json:"fields"`
	ExpiresAt string            `json:"expires_at"`
	Policy    struct {
		Conditions []any  `json:"conditions"`
		Expiration string `json:"expiration"`
	} `json:"policy"`
}

func runForm(t *testing.T, envVars map[string]string, args ...string) formOutput {
	t.Helper()
	code, out, errOut := runCmd(t, Form, "", envVars, args...)
	if code != ExitOK {
		t.Fatalf("form %v: exit %d: %s", args, code, errOut)
	}
	var got formOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return got
}

// TestFormConformanceVectors runs `form` with the flags that express each
// of Google's 11 POST policy vectors and compares the action URL, every
// field (the signature among them) and the decoded policy.
func TestFormConformanceVectors(t *testing.T) {
	cases := vectors.PostPolicies(t)
	if len(cases) != 11 {
		t.Errorf("found %d POST policy vectors, want 11", len(cases))
	}
	for _, v := range cases {
		t.Run(v.Description, func(t *testing.T) {
			in := v.PolicyInput
			args := []string{"--key-file", dummyKey, "--at", in.Timestamp.Format(time.RFC3339),
				"--duration", fmt.Sprintf("%ds", in.Expiration), "--scheme", in.Scheme}
			switch in.URLStyle {
			case "VIRTUAL_HOSTED_STYLE":
				args = append(args, "--style", "virtual")
			case "BUCKET_BOUND_HOSTNAME":
				args = append(args, "--style", "bound", "--hostname", in.BucketBoundHostname)
			}
			if r := in.Conditions.ContentLengthRange; len(r) == 2 {
				args = append(args, "--min-size", fmt.Sprint(r[0]), "--max-size", fmt.Sprint(r[1]))
			}
			extra := 0 // fields the page gets for starts-with conditions
			if r := in.Conditions.StartsWith; len(r) == 2 {
				args = append(args, "--starts-with", strings.TrimPrefix(r[0], "$")+"="+r[1])
				extra++
			}
			names := make([]string, 0, len(in.Fields))
			for name := range in.Fields {
				names = append(names, name)
			}
			slices.Sort(names)
			for _, name := range names { // each through the flag a user would use
				value := in.Fields[name]
				switch {
				case name == "success_action_status":
					args = append(args, "--success-status", value)
				case name == "success_action_redirect":
					args = append(args, "--redirect", value)
				case name == "content-type":
					args = append(args, "--content-type", value)
				case strings.HasPrefix(name, "x-goog-meta-"):
					args = append(args, "--meta", strings.TrimPrefix(name, "x-goog-meta-")+"="+value)
				default:
					args = append(args, "--field", name+"="+value)
				}
			}
			got := runForm(t, nil, append(args, "gs://"+in.Bucket+"/"+in.Object)...)
			want := v.PolicyOutput
			if got.URL != want.URL {
				t.Errorf("url %s, want %s", got.URL, want.URL)
			}
			for name, value := range want.Fields {
				if got.Fields[name] != value {
					t.Errorf("field %s:\n got %q\nwant %q", name, got.Fields[name], value)
				}
			}
			if len(got.Fields) != len(want.Fields)+extra {
				t.Errorf("%d fields, want %d: %v", len(got.Fields), len(want.Fields)+extra, got.Fields)
			}
			var wantPolicy, gotPolicy any
			if err := json.Unmarshal([]byte(want.ExpectedDecodedPolicy), &wantPolicy); err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(got.Policy)
			if err := json.Unmarshal(raw, &gotPolicy); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotPolicy, wantPolicy) {
				t.Errorf("policy:\n got %s\nwant %s", raw, want.ExpectedDecodedPolicy)
			}
		})
	}
}

// decodedPolicy decodes the policy field and checks that the policy output
// matches it.
func decodedPolicy(t *testing.T, got formOutput) []any {
	t.Helper()
	doc, err := base64.StdEncoding.DecodeString(got.Fields["policy"])
	if err != nil {
		t.Fatalf("policy field is not base64: %v", err)
	}
	var p struct {
		Conditions []any `json:"conditions"`
	}
	if err := json.Unmarshal(doc, &p); err != nil {
		t.Fatalf("policy is not JSON: %v\n%s", err, doc)
	}
	if !reflect.DeepEqual(p.Conditions, got.Policy.Conditions) {
		t.Errorf("the printed policy differs from the signed one:\n%s", doc)
	}
	return p.Conditions
}

// hasCondition reports whether conds holds want (compared as JSON).
func hasCondition(conds []any, want string) bool {
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		panic(err)
	}
	for _, c := range conds {
		if reflect.DeepEqual(c, w) {
			return true
		}
	}
	return false
}

// hmacV4 derives the V4 signing key from scratch, as the stores do, and
// signs the base64 policy with it.
func hmacV4(secretPrefix, secret, credential, policy string) string {
	parts := strings.Split(credential, "/") // ID/DATE/REGION/SERVICE/TERMINATOR
	key := []byte(secretPrefix + secret)
	for _, p := range parts[1:] {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(p))
		key = m.Sum(nil)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(policy))
	return hex.EncodeToString(m.Sum(nil))
}

// TestFormSignaturesResign checks forms from each kind of signer by signing
// their policy again, independently of package sign: RSA with the public
// key of a fresh key file and of the IAM emulator (keyless), HMAC from the
// secret for both dialects; and that the conditions asked for are in the
// signed policy.
func TestFormSignaturesResign(t *testing.T) {
	keyFile := writeKeyFile(t, "uploader@p.iam.gserviceaccount.com")
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(keyPEM, &kf); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(kf.PrivateKey))
	rsaKey, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	emu := iamtest.Start(t, iamemu.Options{})

	const secret = "form-test-secret/with+symbols"
	hmacEnv := map[string]string{"LINKISSUER_HMAC_SECRET": secret}
	// Each check signs (or verifies) the policy field again from scratch.
	verifyRSA := func(pub *rsa.PublicKey) func(got formOutput, policy, sig string) error {
		return func(got formOutput, policy, sig string) error {
			sum := sha256.Sum256([]byte(policy))
			raw, err := hex.DecodeString(sig)
			if err != nil {
				return err
			}
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw)
		}
	}
	verifyHMAC := func(prefix string) func(got formOutput, policy, sig string) error {
		return func(got formOutput, policy, sig string) error {
			cred := got.Fields["x-goog-credential"] + got.Fields["x-amz-credential"]
			if want := hmacV4(prefix, secret, cred, policy); sig != want {
				return fmt.Errorf("signature %s, re-signed %s", sig, want)
			}
			return nil
		}
	}
	common := []string{"--max-size", "1MiB", "--min-size", "1", "--key-starts-with", "uploads/", "--content-type-prefix", "image/",
		"--success-status", "201", "--meta", "owner=ada", "--duration", "30m"}
	for _, tc := range []struct {
		name      string
		env       map[string]string
		args      []string
		target    string
		algorithm string
		verify    func(got formOutput, policy, sig string) error
		wantURL   string
		wantConds []string
	}{
		{
			name: "key file", args: []string{"--key-file", keyFile}, target: "gs://media-uploads/",
			algorithm: "GOOG4-RSA-SHA256", verify: verifyRSA(&rsaKey.PublicKey),
			wantURL: "https://storage.googleapis.com/media-uploads/",
			wantConds: []string{`["content-length-range",1,1048576]`, `["starts-with","$key","uploads/"]`, `["starts-with","$content-type","image/"]`,
				`{"x-goog-meta-owner":"ada"}`, `{"success_action_status":"201"}`, `{"bucket":"media-uploads"}`},
		},
		{
			name: "keyless through the IAM emulator", args: []string{"--service-account", emu.Email(), "--iam-endpoint", emu.Endpoint()},
			target: "gs://media-uploads/", algorithm: "GOOG4-RSA-SHA256", verify: verifyRSA(emu.PublicKey()),
			wantURL:   "https://storage.googleapis.com/media-uploads/",
			wantConds: []string{`["starts-with","$key","uploads/"]`},
		},
		{
			name: "GOOG4 HMAC in another universe", env: hmacEnv, args: []string{"--hmac-access-id", "GOOG1EXAMPLE", "--universe-domain", "example-universe.com"},
			target: "gs://media-uploads/uploads/", algorithm: "GOOG4-HMAC-SHA256", verify: verifyHMAC("GOOG4"),
			wantURL:   "https://storage.example-universe.com/media-uploads/",
			wantConds: []string{`["content-length-range",1,1048576]`, `{"x-goog-algorithm":"GOOG4-HMAC-SHA256"}`},
		},
		{
			name: "AWS4 HMAC", env: hmacEnv, args: []string{"--hmac-access-id", "AKIDEXAMPLE", "--region", "eu-west-1"},
			target: "s3://media-uploads/", algorithm: "AWS4-HMAC-SHA256", verify: verifyHMAC("AWS4"),
			wantURL: "https://media-uploads.s3.eu-west-1.amazonaws.com/",
			wantConds: []string{`["starts-with","$Content-Type","image/"]`, `{"x-amz-meta-owner":"ada"}`,
				`{"x-amz-algorithm":"AWS4-HMAC-SHA256"}`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runForm(t, tc.env, append(append(tc.args, common...), tc.target)...)
			if got.URL != tc.wantURL {
				t.Errorf("url %s, want %s", got.URL, tc.wantURL)
			}
			prefix := "x-goog-"
			if tc.algorithm == "AWS4-HMAC-SHA256" {
				prefix = "x-amz-"
			}
			if got.Fields[prefix+"algorithm"] != tc.algorithm {
				t.Errorf("algorithm %q, want %s", got.Fields[prefix+"algorithm"], tc.algorithm)
			}
			if got.Fields["key"] != "uploads/${filename}" {
				t.Errorf("key field %q, want uploads/${filename}", got.Fields["key"])
			}
			conds := decodedPolicy(t, got)
			for _, c := range tc.wantConds {
				if !hasCondition(conds, c) {
					t.Errorf("policy lacks %s: %v", c, conds)
				}
			}
			if hasCondition(conds, `{"key":"uploads/${filename}"}`) {
				t.Errorf("policy pins the key although it may start with uploads/: %v", conds)
			}
			exp, err := time.Parse(time.RFC3339, got.ExpiresAt)
			if err != nil || exp.Format(time.RFC3339) != got.Policy.Expiration {
				t.Errorf("expires_at %q, policy expiration %q", got.ExpiresAt, got.Policy.Expiration)
			}
			if left := time.Until(exp); left < 25*time.Minute || left > 31*time.Minute {
				t.Errorf("expires in %s, want 30m", left)
			}
			sig := got.Fields[prefix+"signature"]
			if err := tc.verify(got, got.Fields["policy"], sig); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
			// The same check refuses a policy with one character changed.
			policy := []byte(got.Fields["policy"])
			policy[10] ^= 1
			if err := tc.verify(got, string(policy), sig); err == nil {
				t.Errorf("a changed policy verifies too: the check proves nothing")
			}
		})
	}
}
