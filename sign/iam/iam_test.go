package iam

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/keys"
)

func TestIAMSignerSignsVerifiableURLs(t *testing.T) {
	s := iamtest.Start(t, emulator.Options{Email: "signer@proj.iam.gserviceaccount.com"})
	for _, endpoint := range []string{s.Endpoint(), s.URL()} { // with and without the trailing slash
		signer, err := NewSigner(context.Background(), Options{
			Email:     "signer@proj.iam.gserviceaccount.com",
			Delegates: []string{"first@proj.iam.gserviceaccount.com", "projects/-/serviceAccounts/second@proj.iam.gserviceaccount.com"},
			Endpoint:  endpoint,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := sign.Credential{Identity: "signer@proj.iam.gserviceaccount.com", Kind: sign.KindRSA, Keyless: true}
		if got := signer.Credential(); got != want {
			t.Errorf("Credential() = %+v, want %+v", got, want)
		}
		u, err := sign.New(signer, nil)
		if err != nil {
			t.Fatal(err)
		}
		req := sign.Request{Method: "GET", Bucket: "bucket", Object: "a/b.txt", Expires: 15 * time.Minute, Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		link, err := u.Sign(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		// As `linkissuer verify --iam-endpoint` checks it: sign.Verify, with
		// the certificate the account publishes (sign/keys).
		published := keys.Source{CertURL: s.URL() + "/service_accounts/v1/metadata/x509/"}
		v := sign.Verify(context.Background(), sign.VerifyRequest{URL: link.URL, Method: "GET", At: req.Time}, sign.VerifyKeys{RSA: published.Load})
		if v.Verdict != sign.Valid {
			t.Errorf("endpoint %s: URL is %s with the published certificate: %s", endpoint, v.Verdict, v.Detail)
		}
		if !strings.Contains(link.URL, "X-Goog-Credential=signer%40proj.iam.gserviceaccount.com%2F20260301%2Fauto%2Fstorage%2Fgoog4_request") {
			t.Errorf("credential not in URL: %s", link.URL)
		}
	}
	chains := s.Delegates()
	wantChain := []string{"projects/-/serviceAccounts/first@proj.iam.gserviceaccount.com", "projects/-/serviceAccounts/second@proj.iam.gserviceaccount.com"}
	if len(chains) != 1 || strings.Join(chains[0], ",") != strings.Join(wantChain, ",") {
		t.Errorf("delegates seen by IAM = %q, want %q", chains, wantChain)
	}
}

// fixedAnswer serves one canned signBlob answer.
func fixedAnswer(t *testing.T, code int, contentType, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(code)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func googleErr(code int, status, msg string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
	return string(b)
}

func TestIAMSignerClassifiesErrors(t *testing.T) {
	const payload = "SECRET-STRING-TO-SIGN"
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // connection refused from now on
	for _, tc := range []struct {
		name      string
		endpoint  string
		retryable bool
		throttled bool
		code      int
	}{
		{"429 quota", fixedAnswer(t, 429, "application/json", googleErr(429, "RESOURCE_EXHAUSTED", "Quota exceeded")), true, true, 429},
		{"500", fixedAnswer(t, 500, "application/json", googleErr(500, "INTERNAL", "Internal error encountered.")), true, false, 500},
		{"502 HTML page", fixedAnswer(t, 502, "text/html", "<html>502. That's an error.</html>"), true, false, 502},
		{"503", fixedAnswer(t, 503, "application/json", googleErr(503, "UNAVAILABLE", "The service is currently unavailable.")), true, false, 503},
		{"504", fixedAnswer(t, 504, "application/json", googleErr(504, "DEADLINE_EXCEEDED", "Deadline expired")), true, false, 504},
		{"transient 403", fixedAnswer(t, 403, "application/json", googleErr(403, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist).")), true, false, 403},
		{"other 403", fixedAnswer(t, 403, "application/json", googleErr(403, "PERMISSION_DENIED", "IAM Service Account Credentials API has not been used in project 1 before or it is disabled.")), false, false, 403},
		{"400", fixedAnswer(t, 400, "application/json", googleErr(400, "INVALID_ARGUMENT", "bad")), false, false, 400},
		{"404", fixedAnswer(t, 404, "application/json", googleErr(404, "NOT_FOUND", "Not found; Gaia id not found")), false, false, 404},
		{"connection refused", closed.URL, true, false, 0},
		{"malformed signedBlob", fixedAnswer(t, 200, "application/json", `{"keyId":"k","signedBlob":"!!!"}`), false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSigner(context.Background(), Options{Email: "a@p.iam.gserviceaccount.com", Endpoint: tc.endpoint})
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.Sign(context.Background(), sign.Scope{}, []byte(payload))
			if err == nil {
				t.Fatalf("signed (%d bytes), want an error", len(sig))
			}
			if got := sign.IsRetryable(err); got != tc.retryable {
				t.Errorf("sign.IsRetryable = %v, want %v: %v", got, tc.retryable, err)
			}
			var ie *Error
			if tc.code != 0 {
				if !errors.As(err, &ie) || ie.Code != tc.code {
					t.Fatalf("want an *Error with code %d, got %v", tc.code, err)
				}
				if ie.Throttled() != tc.throttled {
					t.Errorf("Throttled() = %v, want %v", ie.Throttled(), tc.throttled)
				}
			}
			msg := err.Error()
			if strings.Contains(msg, payload) || strings.Contains(msg, base64.StdEncoding.EncodeToString([]byte(payload))) {
				t.Errorf("error leaks the payload: %s", msg)
			}
		})
	}
}

func TestIAMSignerCallerCancellationIsNotRetryable(t *testing.T) {
	s := iamtest.Start(t, emulator.Options{HangRate: 1, HangMax: time.Minute})
	signer, err := NewSigner(context.Background(), Options{Email: s.Email(), Endpoint: s.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for s.Stats().Hung == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err = signer.Sign(ctx, sign.Scope{}, []byte("x"))
	if !errors.Is(err, context.Canceled) || sign.IsRetryable(err) {
		t.Errorf("err = %v: want context.Canceled, not retryable", err)
	}
}

func TestIAMOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		bad  string // the field named in the error, "" when valid
	}{
		{"empty (discover)", Options{}, ""},
		{"full", Options{Email: "a@p.iam.gserviceaccount.com", Delegates: []string{"b@p.iam.gserviceaccount.com", "projects/-/serviceAccounts/c@p.iam.gserviceaccount.com"}, Endpoint: "https://iamcredentials.example.com/"}, ""},
		{"email without @", Options{Email: "12345"}, "service-account"},
		{"delegate with a project", Options{Delegates: []string{"projects/p/serviceAccounts/b@p.iam.gserviceaccount.com"}}, "delegate"},
		{"delegate not an email", Options{Delegates: []string{"bob"}}, "delegate"},
		{"endpoint without scheme", Options{Endpoint: "127.0.0.1:8085"}, "iam-endpoint"},
		{"endpoint ftp", Options{Endpoint: "ftp://h/"}, "iam-endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			var ie *sign.InputError
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.bad != "" && (!errors.As(err, &ie) || ie.Field != tc.bad):
				t.Errorf("Validate() = %v, want an sign.InputError for %q", err, tc.bad)
			}
		})
	}
}

func TestEmailFromCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"service account key", `{"type":"service_account","client_email":"sa@p.iam.gserviceaccount.com","private_key":"..."}`, "sa@p.iam.gserviceaccount.com"},
		{"impersonated", `{"type":"impersonated_service_account","service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/target@p.iam.gserviceaccount.com:generateAccessToken","source_credentials":{}}`, "target@p.iam.gserviceaccount.com"},
		{"impersonated, escaped", `{"type":"impersonated_service_account","service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/target%40p.iam.gserviceaccount.com:generateAccessToken"}`, "target@p.iam.gserviceaccount.com"},
		{"workload identity federation", `{"type":"external_account","service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/wif@p.iam.gserviceaccount.com:generateAccessToken"}`, "wif@p.iam.gserviceaccount.com"},
		{"user credentials", `{"type":"authorized_user","client_id":"x","refresh_token":"y"}`, ""},
		{"garbled URL", `{"type":"impersonated_service_account","service_account_impersonation_url":"https://example.com/nothing"}`, ""},
		{"not JSON", `nope`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := emailFromCredentials([]byte(tc.file))
			if tc.want == "" {
				if err == nil || !sign.IsInputError(err) {
					t.Errorf("got %q, %v: want an sign.InputError", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v: want %q", got, err, tc.want)
			}
		})
	}
}

// TestIAMSignerDiscoversEmail runs the discovery end to end: the ADC file
// the caller names (Options.CredentialsFile), else gcloud's well-known file
// in Options.GcloudConfigDir, else the metadata server (a local one:
// GCE_METADATA_HOST, which the metadata library reads).
func TestIAMSignerDiscoversEmail(t *testing.T) {
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" || r.URL.Path != "/computeMetadata/v1/instance/service-accounts/default/email" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		w.Write([]byte("runtime@p.iam.gserviceaccount.com"))
	}))
	defer md.Close()
	emptyMD := httptest.NewServer(http.NotFoundHandler())
	defer emptyMD.Close()

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saFile := write("sa.json", `{"type":"service_account","client_email":"file@p.iam.gserviceaccount.com"}`)
	gcloudDir := filepath.Join(dir, "gcloud")
	write("gcloud/application_default_credentials.json", `{"type":"impersonated_service_account","service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/gcloud@p.iam.gserviceaccount.com:generateAccessToken"}`)

	for _, tc := range []struct {
		name, adc, cloudsdk, metadata string
		want                          string // "" for an error
	}{
		{"credentials file", saFile, gcloudDir, md.URL, "file@p.iam.gserviceaccount.com"},
		{"gcloud well-known file", "", gcloudDir, md.URL, "gcloud@p.iam.gserviceaccount.com"},
		{"metadata server", "", filepath.Join(dir, "none"), md.URL, "runtime@p.iam.gserviceaccount.com"},
		{"named file missing", filepath.Join(dir, "missing.json"), gcloudDir, md.URL, ""},
		{"metadata without an account", "", filepath.Join(dir, "none"), emptyMD.URL, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(tc.metadata, "http://"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := NewSigner(ctx, Options{Endpoint: "http://127.0.0.1:1/", CredentialsFile: tc.adc, GcloudConfigDir: tc.cloudsdk})
			if tc.want == "" {
				if err == nil {
					t.Fatalf("discovered %q, want an error", s.Email())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Email() != tc.want || s.Credential().Identity != tc.want {
				t.Errorf("discovered %q, want %q", s.Email(), tc.want)
			}
		})
	}
}
