package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/internal/vectors"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/iam"
)

// conformanceVector is the part of a GCS V4 conformance case verify needs.
type conformanceVector struct {
	Description string            `json:"description"`
	Method      string            `json:"method"`
	Expiration  int64             `json:"expiration"`
	Timestamp   time.Time         `json:"timestamp"`
	ExpectedURL string            `json:"expectedUrl"`
	Headers     map[string]string `json:"headers"`
}

func loadVectors(t *testing.T) []conformanceVector {
	t.Helper()
	data := vectors.Read(t, vectors.GCS)
	var f struct {
		Tests []conformanceVector `json:"signingV4Tests"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f.Tests
}

// verdictOf extracts the verdict line of verify's output.
func verdictOf(out string) string {
	return strings.TrimSpace(strings.TrimPrefix(lineOf(out, "verdict:"), "verdict:"))
}

// signatureOf returns the hex signature of a signed URL, even one that
// does not parse.
func signatureOf(raw string) string {
	if m := regexp.MustCompile(`(?i)X-(?:Goog|Amz)-Signature=([0-9a-f]+)`).FindStringSubmatch(raw); m != nil {
		return m[1]
	}
	return ""
}

// checkVerify runs verify and checks its exit code and verdict, and that
// the signature is never printed.
func checkVerify(t *testing.T, envVars map[string]string, stdin string, wantCode int, wantVerdict string, args ...string) string {
	t.Helper()
	code, out, errOut := runCmd(t, Verify, stdin, envVars, args...)
	if code != wantCode {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, out, errOut)
	}
	if wantVerdict != "" && verdictOf(out) != wantVerdict {
		t.Errorf("verdict %q, want %q\nstdout:\n%s", verdictOf(out), wantVerdict, out)
	}
	for _, a := range append([]string{stdin}, args...) {
		if sig := signatureOf(a); len(sig) > 16 && strings.Contains(out+errOut, sig[8:]) {
			t.Errorf("the signature was printed:\n%s%s", out, errOut)
		}
	}
	return out
}

// Every conformance URL is valid at its timestamp with the dummy key,
// expired after its expiration, not yet valid before, and tampered once an
// unsigned-looking detail is altered.
func TestVerifyConformanceVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Description, func(t *testing.T) {
			base := []string{"--key-file", dummyKey, "--method", v.Method}
			names := make([]string, 0, len(v.Headers))
			for name := range v.Headers {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				base = append(base, "--header", name+": "+v.Headers[name])
			}
			at := func(d time.Duration) string { return v.Timestamp.Add(d).Format(time.RFC3339) }
			exp := time.Duration(v.Expiration) * time.Second
			tampered := strings.Replace(v.ExpectedURL, "X-Goog-Expires=", "X-Goog-Expires=1", 1)
			tests := []struct {
				name    string
				url, at string
				code    int
				verdict string
			}{
				{"at signing time", v.ExpectedURL, at(0), ExitOK, "VALID"},
				{"just before expiry", v.ExpectedURL, at(exp - time.Second), ExitOK, "VALID"},
				{"at expiry", v.ExpectedURL, at(exp), ExitFailure, "EXPIRED"},
				{"a day later", v.ExpectedURL, at(24 * time.Hour), ExitFailure, "EXPIRED"},
				{"before signing", v.ExpectedURL, at(-time.Minute), ExitFailure, "NOT YET VALID"},
				{"expiry stretched", tampered, at(0), ExitFailure, "TAMPERED"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					args := append(append([]string{}, base...), "--at", tc.at, tc.url)
					checkVerify(t, nil, "", tc.code, tc.verdict, args...)
				})
			}
		})
	}
}

// The decoded fields are printed for a newcomer to read.
func TestVerifyPrintsTheDecodedURL(t *testing.T) {
	v := loadVectors(t)[0] // Simple GET
	out := checkVerify(t, nil, "", ExitOK, "VALID", v.ExpectedURL, "--key-file", dummyKey, "--at", "2019-02-01T09:00:04Z")
	for _, want := range []string{
		"algorithm:      GOOG4-RSA-SHA256\n",
		"credential:     test-iam-credentials@dummy-project-id.iam.gserviceaccount.com\n",
		"scope:          20190201/auto/storage/goog4_request\n",
		"request:        GET https://storage.googleapis.com/test-bucket/test-object\n",
		"signed headers: host\n",
		"signed at:      2019-02-01T09:00:00Z\n",
		"expires at:     2019-02-01T09:00:10Z (10s after signing)\n",
		"time left:      6s (at 2019-02-01T09:00:04Z)\n",
		"signature:      256 bytes, 95e6a13d…\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The fingerprint looks the link up in the audit trail.
	fp, err := audit.Fingerprint(v.ExpectedURL)
	if err != nil || !strings.Contains(out, "fingerprint:    "+fp) {
		t.Errorf("output lacks the fingerprint %s (%v):\n%s", fp, err, out)
	}
}

// The same object's URL altered in each part the signature covers is
// tampered; signed by another key it is an unknown key.
func TestVerifyTamperedAndUnknownKey(t *testing.T) {
	v := loadVectors(t)[0]
	other := writeKeyFile(t, "other@example.iam.gserviceaccount.com")
	at := "2019-02-01T09:00:01Z"
	tests := []struct {
		name    string
		url     string
		args    []string
		verdict string
	}{
		{"other object", strings.Replace(v.ExpectedURL, "test-object", "test-object2", 1), nil, "TAMPERED"},
		{"other bucket", strings.Replace(v.ExpectedURL, "/test-bucket/", "/prod-bucket/", 1), nil, "TAMPERED"},
		{"other host", strings.Replace(v.ExpectedURL, "storage.googleapis.com", "evil.example.com", 1), nil, "TAMPERED"},
		{"query added", strings.Replace(v.ExpectedURL, "?", "?response-content-type=text%2Fhtml&", 1), nil, "TAMPERED"},
		{"other method", v.ExpectedURL, []string{"--method", "DELETE"}, "WRONG METHOD"},
		{"signing date moved", strings.Replace(v.ExpectedURL, "T090000Z", "T100000Z", 1), nil, "TAMPERED"},
		{"signature altered", strings.Replace(v.ExpectedURL, "X-Goog-Signature=95", "X-Goog-Signature=96", 1), nil, "TAMPERED"},
		{"another key", v.ExpectedURL, []string{"--key-file", other}, "UNKNOWN KEY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--key-file", dummyKey, "--at", at, tc.url}
			if len(tc.args) > 0 && tc.args[0] == "--key-file" {
				args = []string{"--at", at, tc.url}
			}
			out := checkVerify(t, nil, "", ExitFailure, tc.verdict, append(args, tc.args...)...)
			if tc.name == "another key" && !strings.Contains(out, "the key is other@example.iam.gserviceaccount.com's") {
				t.Errorf("unknown key does not say whose key it tried:\n%s", out)
			}
		})
	}
}

// writeKeyFile writes a fresh service-account JSON key for email.
func writeKeyFile(t *testing.T, email string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	data, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": email, "private_key": string(p), "private_key_id": "k1"})
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// HMAC URLs, GOOG4 and AWS4, with the secret from the environment or a file.
func TestVerifyHMAC(t *testing.T) {
	const id, secret = "GOOG1EXAMPLEACCESSID", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	hs, err := sign.NewHMACSigner(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signedAt := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := signedAt.Add(time.Minute).Format(time.RFC3339)
	for _, d := range []sign.Dialect{sign.GOOG4, sign.AWS4} {
		u, err := sign.New(hs, &sign.Options{Dialect: d, Region: "us-east-1", Endpoint: sign.Endpoint{ClientEndpoint: "http://127.0.0.1:9000"}})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := u.Sign(context.Background(), sign.Request{
			Method: "PUT", Bucket: "media", Object: "dir/Q3 report ü+1.pdf", Expires: time.Hour, Time: signedAt,
			Headers: []sign.Header{{Name: "Content-Type", Value: "application/pdf"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		put := []string{"--method", "PUT", "--header", "Content-Type: application/pdf", "--at", at}
		tests := []struct {
			name    string
			env     map[string]string
			args    []string
			code    int
			verdict string
		}{
			{"secret from env", map[string]string{"LINKISSUER_HMAC_SECRET": secret}, []string{"--hmac-access-id", id}, ExitOK, "VALID"},
			{"secret from file", nil, []string{"--hmac-access-id", id, "--hmac-secret-file", secretFile}, ExitOK, "VALID"},
			{"access id from env", map[string]string{"LINKISSUER_HMAC_SECRET": secret, "LINKISSUER_HMAC_ACCESS_ID": id}, nil, ExitOK, "VALID"},
			{"wrong secret", map[string]string{"LINKISSUER_HMAC_SECRET": "not-the-secret"}, []string{"--hmac-access-id", id}, ExitFailure, "TAMPERED"},
			{"other access id", map[string]string{"LINKISSUER_HMAC_SECRET": secret}, []string{"--hmac-access-id", "GOOG1OTHER"}, ExitFailure, "UNKNOWN KEY"},
			{"expired", map[string]string{"LINKISSUER_HMAC_SECRET": secret}, []string{"--hmac-access-id", id, "--at", "2026-03-01T13:00:00Z"}, ExitFailure, "EXPIRED"},
			{"no secret", nil, []string{"--hmac-access-id", id}, ExitUsage, ""},
			{"no HMAC key given", nil, nil, ExitUsage, "NOT CHECKED"},
		}
		for _, tc := range tests {
			t.Run(d.String()+"/"+tc.name, func(t *testing.T) {
				args := append(append(append([]string{}, put...), tc.args...), signed.URL)
				checkVerify(t, tc.env, "", tc.code, tc.verdict, args...)
			})
		}
		t.Run(d.String()+"/body altered", func(t *testing.T) {
			args := []string{"--method", "PUT", "--header", "Content-Type: text/html", "--at", at, "--hmac-access-id", id, signed.URL}
			checkVerify(t, map[string]string{"LINKISSUER_HMAC_SECRET": secret}, "", ExitFailure, "TAMPERED", args...)
		})
	}
}

// Keyless URLs verify against the IAM emulator's public-key endpoints, the
// way production URLs verify against Google's.
func TestVerifyKeylessAgainstEndpoints(t *testing.T) {
	emu := iamtest.Start(t, iamemu.Options{})
	// Another emulator for the same account: same email, another key, as
	// after a key rotation.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rotated := iamtest.Start(t, iamemu.Options{Key: other})

	keyless, err := iam.NewSigner(context.Background(), iam.Options{Email: emu.Email(), Endpoint: emu.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	u, err := sign.New(keyless, nil)
	if err != nil {
		t.Fatal(err)
	}
	signedAt := time.Now().UTC().Truncate(time.Second)
	signed, err := u.Sign(context.Background(), sign.Request{Method: "GET", Bucket: "media", Object: "a b.txt", Expires: 15 * time.Minute, Time: signedAt})
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pemFile, []byte(iamemu.PublicKeyPEM(emu.PublicKey())), 0o644); err != nil {
		t.Fatal(err)
	}
	x509Base := emu.URL() + "/service_accounts/v1/metadata/x509/"
	tampered := strings.Replace(signed.URL, "a%20b.txt", "c%20d.txt", 1)
	tests := []struct {
		name    string
		url     string
		args    []string
		code    int
		verdict string
		key     string
	}{
		{"iam endpoint", signed.URL, []string{"--iam-endpoint", emu.Endpoint()}, ExitOK, "VALID", "key " + emu.KeyID()},
		{"iam endpoint from env", signed.URL, nil, ExitOK, "VALID", "key " + emu.KeyID()},
		{"cert url with email appended", signed.URL, []string{"--cert-url", x509Base}, ExitOK, "VALID", x509Base + url.PathEscape(emu.Email())},
		{"full cert url", signed.URL, []string{"--cert-url", x509Base + emu.Email()}, ExitOK, "VALID", ""},
		{"jwk url", signed.URL, []string{"--jwk-url", emu.URL() + "/service_accounts/v1/metadata/jwk/"}, ExitOK, "VALID", "key " + emu.KeyID()},
		{"pem public key", signed.URL, []string{"--key-file", pemFile}, ExitOK, "VALID", "key file"},
		{"rotated key", signed.URL, []string{"--iam-endpoint", rotated.Endpoint()}, ExitFailure, "UNKNOWN KEY", ""},
		{"no such account", signed.URL, []string{"--cert-url", x509Base + "nobody@example.com"}, ExitFailure, "UNKNOWN KEY", ""},
		{"tampered", tampered, []string{"--iam-endpoint", emu.Endpoint()}, ExitFailure, "TAMPERED", "key " + emu.KeyID()},
		{"expired", signed.URL, []string{"--iam-endpoint", emu.Endpoint(), "--at", signedAt.Add(time.Hour).Format(time.RFC3339)}, ExitFailure, "EXPIRED", ""},
		{"hmac key for an RSA URL", signed.URL, []string{"--hmac-access-id", "GOOG1X"}, ExitUsage, "NOT CHECKED", ""},
		{"endpoint down", signed.URL, []string{"--cert-url", "http://127.0.0.1:1/x509/"}, ExitFailure, "NOT CHECKED", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"LINKISSUER_HMAC_SECRET": "s"}
			if tc.args == nil {
				env["LINKISSUER_IAM_ENDPOINT"] = emu.Endpoint()
			}
			out := checkVerify(t, env, "", tc.code, tc.verdict, append(tc.args, tc.url)...)
			if keyLine := lineOf(out, "key:"); tc.key != "" && !strings.Contains(keyLine, tc.key) {
				t.Errorf("key line does not name %q:\n%s", tc.key, out)
			}
		})
	}
}

func TestVerifyCommandLine(t *testing.T) {
	v := loadVectors(t)
	simple, resumable := v[0], v[2]
	at := "2019-02-01T09:00:01Z"
	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		verdict string
	}{
		{"flags after the URL", "", []string{simple.ExpectedURL, "--key-file", dummyKey, "--at", at}, ExitOK, "VALID"},
		{"URL from stdin", simple.ExpectedURL + "\n", []string{"--key-file", dummyKey, "--at", at, "-"}, ExitOK, "VALID"},
		{"RESUMABLE adds its header", "", []string{"--key-file", dummyKey, "--at", at, "--method", "RESUMABLE", resumable.ExpectedURL}, ExitOK, "VALID"},
		{"POST for a RESUMABLE link", "", []string{"--key-file", dummyKey, "--at", at, "--method", "POST", resumable.ExpectedURL}, ExitFailure, "WRONG METHOD"},
		{"RESUMABLE found without --method", "", []string{"--key-file", dummyKey, "--at", at, resumable.ExpectedURL}, ExitOK, "VALID"},
		{"signed header not given", "", []string{"--key-file", dummyKey, "--at", at, "--method", "RESUMABLE", "--header", "Content-Type: x", resumable.ExpectedURL}, ExitFailure, "MALFORMED"},
		{"control character in the URL", "", []string{"--key-file", dummyKey, simple.ExpectedURL + "\x7f"}, ExitFailure, "MALFORMED"},
		{"not a signed URL", "", []string{"--key-file", dummyKey, "https://storage.googleapis.com/b/o?alt=media"}, ExitFailure, "MALFORMED"},
		{"no URL", "", []string{"--key-file", dummyKey}, ExitUsage, ""},
		{"two URLs", "", []string{simple.ExpectedURL, simple.ExpectedURL}, ExitUsage, ""},
		{"empty stdin", "", []string{"-"}, ExitUsage, ""},
		{"bad --at", "", []string{"--at", "yesterday", simple.ExpectedURL}, ExitUsage, ""},
		{"bad --header", "", []string{"--header", "no-colon", simple.ExpectedURL}, ExitUsage, ""},
		{"two key sources", "", []string{"--key-file", dummyKey, "--jwk-url", "http://x/", simple.ExpectedURL}, ExitUsage, ""},
		{"bad iam endpoint", "", []string{"--iam-endpoint", "127.0.0.1:8085", simple.ExpectedURL}, ExitUsage, ""},
		{"missing key file", "", []string{"--key-file", "/nonexistent/key.json", simple.ExpectedURL}, ExitFailure, "NOT CHECKED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := checkVerify(t, nil, tc.stdin, tc.code, tc.verdict, tc.args...)
			if tc.verdict == "MALFORMED" && !strings.Contains(out, "why:") {
				t.Errorf("malformed without a reason:\n%s", out)
			}
		})
	}
}

// Without a key, RSA URLs are checked against Google's certificate
// endpoint for the URL's account. The network may be closed here: either
// way the answer names that endpoint and the URL is not called valid.
func TestVerifyDefaultsToGoogleCerts(t *testing.T) {
	v := loadVectors(t)[0]
	out := checkVerify(t, nil, "", ExitFailure, "", "--timeout", "5s", "--at", "2019-02-01T09:00:01Z", v.ExpectedURL)
	want := "https://www.googleapis.com/service_accounts/v1/metadata/x509/test-iam-credentials@dummy-project-id.iam.gserviceaccount.com"
	if !strings.Contains(out, want) {
		t.Errorf("output does not name %s:\n%s", want, out)
	}
}

// A genuine link names the key that signed it and the command that takes
// that key's links back; a tampered one names none.
func TestVerifyNamesTheSigningKey(t *testing.T) {
	v := loadVectors(t)[0]
	keyID := dummyKeyID(t)
	out := checkVerify(t, nil, "", ExitOK, "VALID", v.ExpectedURL, "--key-file", dummyKey, "--at", "2019-02-01T09:00:04Z")
	for _, want := range []string{
		"signed by:      service account test-iam-credentials@dummy-project-id.iam.gserviceaccount.com, key " + keyID + "\n",
		"take back:      gcloud iam service-accounts keys disable " + keyID + " --iam-account=test-iam-credentials@dummy-project-id.iam.gserviceaccount.com",
		"or:             gcloud storage buckets remove-iam-policy-binding gs://BUCKET --member=serviceAccount:test-iam-credentials@dummy-project-id.iam.gserviceaccount.com",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Expired is still genuine: the key is named.
	out = checkVerify(t, nil, "", ExitFailure, "EXPIRED", v.ExpectedURL, "--key-file", dummyKey, "--at", "2019-02-01T10:00:00Z")
	if !strings.Contains(out, "key "+keyID) {
		t.Errorf("expired link: key not named:\n%s", out)
	}
	tampered := strings.Replace(v.ExpectedURL, "test-object", "test-objecT", 1)
	out = checkVerify(t, nil, "", ExitFailure, "TAMPERED", tampered, "--key-file", dummyKey, "--at", "2019-02-01T09:00:04Z")
	if strings.Contains(out, "signed by:") || strings.Contains(out, "take back:") {
		t.Errorf("a tampered link names a signer:\n%s", out)
	}

	const id, secret = "GOOG1EXAMPLEACCESSID", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	hs, err := sign.NewHMACSigner(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	u, err := sign.New(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := u.Sign(context.Background(), sign.Request{Method: "GET", Bucket: "media", Object: "a.pdf", Expires: time.Hour, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	out = checkVerify(t, map[string]string{"LINKISSUER_HMAC_SECRET": secret}, "", ExitOK, "VALID", "--hmac-access-id", id, signed.URL)
	for _, want := range []string{"signed by:      HMAC key " + id + "\n", "take back:      gcloud storage hmac update " + id + " --deactivate"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// dummyKeyID is the private_key_id of the conformance key file.
func dummyKeyID(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(dummyKey)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		ID string `json:"private_key_id"`
	}
	if err := json.Unmarshal(data, &k); err != nil || k.ID == "" {
		t.Fatalf("key id of %s: %v", dummyKey, err)
	}
	return k.ID
}
