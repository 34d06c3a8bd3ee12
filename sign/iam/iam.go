// Package iam signs V4 URLs keyless: a sign.Signer backed by the IAM
// Credentials signBlob API, which signs with a service account's
// Google-managed key (Cloud Run, GKE, GCE hold no private key). It is apart
// from package sign so that the pure signing core links no RPC stack.
package iam

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"cloud.google.com/go/compute/metadata"
	"google.golang.org/api/googleapi"
	iamcredentials "google.golang.org/api/iamcredentials/v1"
	"google.golang.org/api/option"

	"github.com/linkissuer/linkissuer/sign"
)

// serviceAccountPrefix is the resource-name prefix IAM Credentials requires;
// the "-" project wildcard is mandatory.
const serviceAccountPrefix = "projects/-/serviceAccounts/"

// Options configure a Signer.
type Options struct {
	// Email is the service account that signs. When empty it is discovered:
	// from the Application Default Credentials file (client_email of a
	// service_account file, the impersonation target of an
	// impersonated_service_account or external_account file), else from the
	// metadata server (Cloud Run, GKE, GCE).
	Email string
	// Delegates is the delegation chain, as emails or
	// projects/-/serviceAccounts/EMAIL names. The caller must be able to
	// impersonate the first; each one the next; the last one Email.
	Delegates []string
	// Endpoint overrides the IAM Credentials endpoint, e.g.
	// http://127.0.0.1:8085/ for the emulator. An http:// endpoint is sent no
	// credentials at all (access tokens never travel in clear text); an
	// https:// endpoint gets Application Default Credentials as usual.
	Endpoint string
	// ClientOptions are passed to the iamcredentials client after those the
	// fields above imply (e.g. option.WithHTTPClient, or
	// option.WithCredentialsFile for non-default credentials).
	ClientOptions []option.ClientOption
	// CredentialsFile and GcloudConfigDir say where email discovery looks
	// before the metadata server; this package reads no environment, so
	// the caller passes them (package config reads them from
	// $GOOGLE_APPLICATION_CREDENTIALS and $CLOUDSDK_CONFIG).
	// CredentialsFile is an Application Default Credentials file; if it
	// is set and cannot be read, discovery fails. GcloudConfigDir is
	// gcloud's configuration directory, whose
	// application_default_credentials.json (written by `gcloud auth
	// application-default login`) is read next if it exists.
	CredentialsFile string
	GcloudConfigDir string
}

// Validate reports malformed options. It does not modify o or touch the
// network.
func (o Options) Validate() error {
	if o.Email != "" {
		if err := checkAccount("service-account", o.Email); err != nil {
			return err
		}
	}
	for _, d := range o.Delegates {
		if _, err := delegateName(d); err != nil {
			return err
		}
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &sign.InputError{Field: "iam-endpoint", Reason: "must be an http:// or https:// URL, got " + strconv.Quote(o.Endpoint)}
		}
	}
	return nil
}

// Signer signs with a service account's Google-managed key through the
// IAM Credentials signBlob API: the keyless way on Cloud Run, GKE and GCE.
// Each Sign is one HTTP call (about 50 ms; the default quota is 60,000 per
// minute per project), so bulk callers should wrap it in sign/engine, which
// bounds concurrency, adapts to the quota and retries.
//
// Errors: a *sign.RetryableError for 408, 429, 500, 502, 503, 504, transport
// failures and timeouts, and the transient 403 "Permission
// iam.serviceAccounts.signBlob denied" that IAM answers in bursts; any other
// answer is permanent. HTTP answers are reported as *Error. Neither the
// payload nor the signature ever appears in an error.
type Signer struct {
	svc       *iamcredentials.Service
	email     string
	name      string
	delegates []string
}

// NewSigner builds a signer. ctx bounds the email discovery (metadata
// server) and the client's construction; calls to Sign use their own ctx.
func NewSigner(ctx context.Context, opts Options) (*Signer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	email := opts.Email
	if email == "" {
		var err error
		if email, err = discoverEmail(ctx, opts.CredentialsFile, opts.GcloudConfigDir); err != nil {
			return nil, err
		}
	}
	delegates := make([]string, 0, len(opts.Delegates))
	for _, d := range opts.Delegates {
		name, _ := delegateName(d) // validated above
		delegates = append(delegates, name)
	}
	// The client can log request and response bodies (payloads and
	// signatures) at debug level; it gets no logger.
	copts := []option.ClientOption{option.WithLogger(slog.New(slog.DiscardHandler))}
	if opts.Endpoint != "" {
		ep := opts.Endpoint
		if !strings.HasSuffix(ep, "/") {
			ep += "/" // the client resolves "v1/..." against it
		}
		copts = append(copts, option.WithEndpoint(ep))
		if strings.HasPrefix(ep, "http://") {
			copts = append(copts, option.WithoutAuthentication())
		}
	}
	copts = append(copts, opts.ClientOptions...)
	svc, err := iamcredentials.NewService(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("iam credentials client: %w", err)
	}
	return &Signer{svc: svc, email: email, name: serviceAccountPrefix + email, delegates: delegates}, nil
}

// Credential implements sign.Signer.
func (s *Signer) Credential() sign.Credential {
	return sign.Credential{Identity: s.email, Kind: sign.KindRSA, Keyless: true}
}

// Email is the service account that signs.
func (s *Signer) Email() string { return s.email }

// Sign implements sign.Signer with one signBlob call. The scope is ignored.
func (s *Signer) Sign(ctx context.Context, _ sign.Scope, stringToSign []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("signBlob: %w", err)
	}
	req := &iamcredentials.SignBlobRequest{
		Payload:   base64.StdEncoding.EncodeToString(stringToSign),
		Delegates: s.delegates,
	}
	resp, err := s.svc.Projects.ServiceAccounts.SignBlob(s.name, req).Context(ctx).Do()
	if err != nil {
		return nil, classifyIAMError(ctx, err)
	}
	sig, err := base64.StdEncoding.DecodeString(resp.SignedBlob)
	if err != nil || len(sig) == 0 {
		// The content is a signature: never echo it.
		return nil, errors.New("signBlob: the answer holds no valid base64 signedBlob")
	}
	return sig, nil
}

// Error is an error answer from IAM Credentials.
type Error struct {
	// Code is the HTTP status.
	Code int
	// Status is the google.rpc code name when the body had one
	// (RESOURCE_EXHAUSTED, PERMISSION_DENIED, ...).
	Status string
	// Message is the server's message, shortened.
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "signBlob: HTTP %d", e.Code)
	if e.Status != "" {
		b.WriteString(" " + e.Status)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Code == http.StatusForbidden {
		b.WriteString(" (the caller needs roles/iam.serviceAccountTokenCreator on the signing account, or on each delegate in turn)")
	}
	return b.String()
}

// Throttled reports a quota answer (429 or RESOURCE_EXHAUSTED): the caller
// is sending faster than the project's quota. Rate limiters look for it.
func (e *Error) Throttled() bool {
	return e.Code == http.StatusTooManyRequests || e.Status == "RESOURCE_EXHAUSTED"
}

// transient reports answers worth retrying.
func (e *Error) transient() bool {
	switch e.Code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusForbidden:
		// IAM answers bursts of this for accounts that do hold the
		// permission; a real denial fails the same way every time and is
		// reported once the retries run out.
		m := strings.ToLower(e.Message)
		return strings.Contains(m, "iam.serviceaccounts.signblob") && strings.Contains(m, "denied")
	}
	return e.Throttled()
}

// classifyIAMError maps a failed call to a *sign.RetryableError or a permanent
// error. The caller's own cancellation or deadline is returned as is (not
// retryable: the caller gave up).
func classifyIAMError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("signBlob: %w", ctxErr)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		e := &Error{Code: ge.Code, Status: rpcStatus(ge.Body), Message: shorten(ge.Message, 300)}
		if e.transient() {
			return &sign.RetryableError{Err: e}
		}
		return e
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		// Resets, refused connections, timeouts: the request may not have
		// reached IAM at all. The url.Error names the endpoint, not the body.
		return &sign.RetryableError{Err: fmt.Errorf("signBlob: %w", err)}
	}
	return fmt.Errorf("signBlob: %w", err)
}

// rpcStatus extracts error.status from a Google JSON error body.
func rpcStatus(body string) string {
	var v struct {
		Error struct {
			Status string `json:"status"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &v) != nil {
		return ""
	}
	return v.Error.Status
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// checkAccount accepts a service-account email.
func checkAccount(field, email string) error {
	if !strings.Contains(email, "@") || strings.ContainsAny(email, "/ \t\r\n") {
		return &sign.InputError{Field: field, Reason: "must be a service-account email, got " + strconv.Quote(email)}
	}
	return nil
}

// delegateName turns an email or a projects/-/serviceAccounts/EMAIL name
// into the resource name IAM Credentials expects.
func delegateName(d string) (string, error) {
	email := d
	if strings.HasPrefix(d, "projects/") {
		if !strings.HasPrefix(d, serviceAccountPrefix) {
			return "", &sign.InputError{Field: "delegate", Reason: "must be an email or projects/-/serviceAccounts/EMAIL (the '-' is required), got " + strconv.Quote(d)}
		}
		email = strings.TrimPrefix(d, serviceAccountPrefix)
	}
	if err := checkAccount("delegate", email); err != nil {
		return "", err
	}
	return serviceAccountPrefix + email, nil
}

// discoverEmail finds the signing account the way Application Default
// Credentials find the caller: the file credentialsFile names, else
// gcloud's well-known file in gcloudDir, else the metadata server.
func discoverEmail(ctx context.Context, credentialsFile, gcloudDir string) (string, error) {
	path, explicit := credentialsFile, true
	if path == "" && gcloudDir != "" {
		path, explicit = filepath.Join(gcloudDir, "application_default_credentials.json"), false
	}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			email, err := emailFromCredentials(data)
			if err != nil {
				return "", fmt.Errorf("credentials file %s: %w", path, err)
			}
			return email, nil
		case explicit || !errors.Is(err, os.ErrNotExist):
			return "", &sign.InputError{Field: "service-account", Reason: "reading credentials: " + err.Error()}
		}
	}
	md := metadata.NewWithOptions(&metadata.Options{})
	if !md.OnGCEWithContext(ctx) {
		return "", &sign.InputError{Field: "service-account", Reason: "not configured, and neither Application Default Credentials nor a metadata server name one: pass the signing service account's email"}
	}
	email, err := md.EmailWithContext(ctx, "default")
	if err != nil {
		return "", fmt.Errorf("service-account email from the metadata server: %w", err)
	}
	email = strings.TrimSpace(email)
	if err := checkAccount("service-account", email); err != nil {
		return "", fmt.Errorf("metadata server: %w", err)
	}
	return email, nil
}

// emailFromCredentials names the service account a credentials file acts
// as: client_email of a service_account key, the impersonation target of an
// impersonated_service_account or external_account file.
func emailFromCredentials(data []byte) (string, error) {
	var f struct {
		Type             string `json:"type"`
		ClientEmail      string `json:"client_email"`
		ImpersonationURL string `json:"service_account_impersonation_url"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return "", &sign.InputError{Field: "service-account", Reason: "credentials file is not JSON: " + err.Error()}
	}
	switch {
	case f.Type == "service_account" && f.ClientEmail != "":
		return f.ClientEmail, checkAccount("service-account", f.ClientEmail)
	case f.ImpersonationURL != "":
		return emailFromImpersonationURL(f.ImpersonationURL)
	}
	return "", &sign.InputError{Field: "service-account", Reason: fmt.Sprintf("credentials of type %q name no service account (user credentials cannot sign): pass the signing service account's email", f.Type)}
}

// emailFromImpersonationURL extracts EMAIL from
// https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken.
func emailFromImpersonationURL(raw string) (string, error) {
	bad := &sign.InputError{Field: "service-account", Reason: "cannot read the target account from service_account_impersonation_url " + strconv.Quote(raw)}
	u, err := url.Parse(raw)
	if err != nil {
		return "", bad
	}
	_, rest, ok := strings.Cut(u.Path, "/serviceAccounts/")
	if !ok {
		return "", bad
	}
	email, _, _ := strings.Cut(rest, ":")
	if checkAccount("service-account", email) != nil {
		return "", bad
	}
	return email, nil
}
