package s3store

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/linkissuer/linkissuer/sign"
)

var testTime = time.Date(2019, 2, 1, 9, 0, 0, 0, time.UTC)

// A GCS service-account HMAC key has this shape (an access ID of
// GOOG1E + 55 characters, a 40-character secret). This one is made up.
var gcsKey = HMACKey{
	AccessID: "GOOG1EXAMPLEXAMPLEXAMPLEXAMPLEXAMPLEXAMPLEXAMPLEXAMPLEXAMPL",
	Secret:   "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ",
}

// TestGCSHMACKeyBothDialects signs the same object with one GCS HMAC key
// in both forms GCS accepts on its XML API: GOOG4-HMAC-SHA256 (X-Goog-*,
// scope .../auto/storage/goog4_request) and, in interoperability mode,
// AWS4-HMAC-SHA256 (X-Amz-*, scope .../REGION/s3/aws4_request). Each must
// verify with the key, and not with another secret; the AWS4 one must also
// match aws-sdk-go-v2's presigner byte for byte.
func TestGCSHMACKeyBothDialects(t *testing.T) {
	hs, err := sign.NewHMACSigner(gcsKey.AccessID, gcsKey.Secret)
	if err != nil {
		t.Fatal(err)
	}
	interop, err := (&Config{Endpoint: "https://storage.googleapis.com", Region: "us-east-1", Key: gcsKey}).SignOptions()
	if err != nil {
		t.Fatal(err)
	}
	req := sign.Request{Method: "GET", Bucket: "media", Object: "reports/Q1 report.pdf", Expires: 15 * time.Minute, Time: testTime}
	for _, tc := range []struct {
		name      string
		opts      *sign.Options
		wantURL   string
		algorithm string
		scope     string
	}{
		{
			name:      "GOOG4-HMAC",
			opts:      nil, // GOOG4, region auto, https://storage.googleapis.com, path style
			wantURL:   "https://storage.googleapis.com/media/reports/Q1%20report.pdf?X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Credential=",
			algorithm: "GOOG4-HMAC-SHA256",
			scope:     "20190201/auto/storage/goog4_request",
		},
		{
			name:      "AWS4-HMAC",
			opts:      interop,
			wantURL:   "https://storage.googleapis.com/media/reports/Q1%20report.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=",
			algorithm: "AWS4-HMAC-SHA256",
			scope:     "20190201/us-east-1/s3/aws4_request",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := sign.New(hs, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := u.Sign(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got.URL, tc.wantURL) {
				t.Errorf("URL %s\ndoes not start with %s", got.URL, tc.wantURL)
			}
			p, err := sign.ParseSignedURL(got.URL, "GET", nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Algorithm != tc.algorithm || p.Identity != gcsKey.AccessID || p.Scope.String() != tc.scope {
				t.Errorf("parsed %s, identity %s, scope %s; want %s, %s, %s", p.Algorithm, p.Identity, p.Scope, tc.algorithm, gcsKey.AccessID, tc.scope)
			}
			if err := p.VerifyHMAC([]byte(gcsKey.Secret)); err != nil {
				t.Errorf("VerifyHMAC with the key: %v", err)
			}
			if err := p.VerifyHMAC([]byte(testKey.Secret)); !errors.Is(err, sign.ErrTampered) {
				t.Errorf("VerifyHMAC with another secret = %v, want ErrTampered", err)
			}
			if err := p.CheckTime(testTime.Add(14 * time.Minute)); err != nil {
				t.Errorf("CheckTime within the lifetime: %v", err)
			}
			if err := p.CheckTime(testTime.Add(15 * time.Minute)); !errors.Is(err, sign.ErrExpired) {
				t.Errorf("CheckTime at expiry = %v, want ErrExpired", err)
			}
			if tc.opts != nil {
				sdk := sdkPresign(t, gcsKey, "https://storage.googleapis.com/media/reports/Q1%20report.pdf", "us-east-1", 15*time.Minute)
				if a, b := signature(t, got.URL), signature(t, sdk); a == "" || a != b {
					t.Errorf("our AWS4 signature differs from aws-sdk-go-v2's (signatures not shown)")
				}
			}
		})
	}
}

// sdkPresign presigns a GET of rawURL (already escaped) with aws-sdk-go-v2's
// V4 signer, configured the way its S3 client configures it.
func sdkPresign(t *testing.T, key HMACKey, rawURL, region string, expires time.Duration) string {
	t.Helper()
	q := url.Values{"X-Amz-Expires": {strconv.FormatInt(int64(expires/time.Second), 10)}}
	req, err := http.NewRequest("GET", rawURL+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: key.AccessID, SecretAccessKey: key.Secret}
	signed, _, err := v4.NewSigner().PresignHTTP(t.Context(), creds, req, sign.UnsignedPayload, "s3", region, testTime,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// signature returns rawURL's X-Amz-Signature or X-Goog-Signature.
func signature(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	return q.Get("X-Amz-Signature") + q.Get("X-Goog-Signature")
}
