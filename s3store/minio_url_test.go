package s3store_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/sign"
)

func writeOpts(contentType string) jobs.WriteOptions {
	return jobs.WriteOptions{ContentType: contentType}
}

// TestMinIOPresignedPutThenGet uploads through a presigned PUT (with a
// signed Content-Type) and downloads through a presigned GET (with a
// signed response-content-disposition), for keys that need escaping.
func TestMinIOPresignedPutThenGet(t *testing.T) {
	f := newFixture(t)
	for _, key := range []string{"plain.txt", "dir/Q1 report (final).pdf", "a+b=c&d/é😀~.bin", "percent%20kept"} {
		t.Run(key, func(t *testing.T) {
			data := []byte("contents of " + key + "\n")
			put, err := f.signer.Sign(t.Context(), sign.Request{
				Method: "PUT", Bucket: f.bucket, Object: key, Expires: 10 * time.Minute, Time: now(),
				Headers: []sign.Header{{Name: "Content-Type", Value: "text/plain"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if r := do(t, request(t, put, data)); r.status != http.StatusOK {
				t.Fatalf("presigned PUT: %d %s: %s", r.status, r.err.Code, r.err.Message)
			}
			get, err := f.signer.Sign(t.Context(), sign.Request{
				Method: "GET", Bucket: f.bucket, Object: key, Expires: 10 * time.Minute, Time: now(),
				Query: []sign.Param{{Name: "response-content-disposition", Value: `attachment; filename="x.txt"`}},
			})
			if err != nil {
				t.Fatal(err)
			}
			r := do(t, request(t, get, nil))
			if r.status != http.StatusOK {
				t.Fatalf("presigned GET: %d %s: %s", r.status, r.err.Code, r.err.Message)
			}
			if !bytes.Equal(r.body, data) {
				t.Errorf("downloaded %q, uploaded %q", r.body, data)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type = %q, want the signed text/plain", ct)
			}
			if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="x.txt"` {
				t.Errorf("Content-Disposition = %q, want the signed override", cd)
			}
		})
	}
}

// TestMinIORefusesAlteredOrExpiredURLs checks that the server, not only our
// verifier, refuses what it must: each case alters a good URL or request
// one way and expects S3's status and error code.
func TestMinIORefusesAlteredOrExpiredURLs(t *testing.T) {
	f := newFixture(t)
	f.put(t, "secret.txt", []byte("the secret"))
	f.put(t, "other.txt", []byte("another object"))
	getURL := func(t *testing.T, at time.Time, key string) *sign.SignedURL {
		su, err := f.signer.Sign(t.Context(), sign.Request{Method: "GET", Bucket: f.bucket, Object: key, Expires: time.Hour, Time: at})
		if err != nil {
			t.Fatal(err)
		}
		return su
	}
	putURL := func(t *testing.T) *sign.SignedURL {
		su, err := f.signer.Sign(t.Context(), sign.Request{
			Method: "PUT", Bucket: f.bucket, Object: "upload.txt", Expires: time.Hour, Time: now(),
			Headers: []sign.Header{{Name: "Content-Type", Value: "text/plain"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return su
	}
	other := func(t *testing.T, key HMACKeyFn) *sign.URLSigner {
		cfg := f.cfg
		cfg.Key = key(cfg.Key)
		u, err := cfg.URLSigner()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, tc := range []struct {
		name       string
		req        func(t *testing.T) *http.Request
		wantStatus int
		wantCode   string
		wantMsg    string // substring of the message, if set
	}{
		{
			name:       "untouched URL works",
			req:        func(t *testing.T) *http.Request { return request(t, getURL(t, now(), "secret.txt"), nil) },
			wantStatus: http.StatusOK,
		},
		{
			name: "tampered signature",
			req: func(t *testing.T) *http.Request {
				su := getURL(t, now(), "secret.txt")
				su.URL = flipLastHex(su.URL)
				return request(t, su, nil)
			},
			wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch",
		},
		{
			name: "changed path",
			req: func(t *testing.T) *http.Request {
				su := getURL(t, now(), "secret.txt")
				su.URL = strings.Replace(su.URL, "/secret.txt?", "/other.txt?", 1)
				return request(t, su, nil)
			},
			wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch",
		},
		{
			name: "changed query (expiry stretched)",
			req: func(t *testing.T) *http.Request {
				su := getURL(t, now(), "secret.txt")
				su.URL = strings.Replace(su.URL, "X-Amz-Expires=3600", "X-Amz-Expires=7200", 1)
				return request(t, su, nil)
			},
			wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch",
		},
		{
			name: "changed signed header",
			req: func(t *testing.T) *http.Request {
				r := request(t, putURL(t), []byte(`{"a":1}`))
				r.Header.Set("Content-Type", "application/json")
				return r
			},
			wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch",
		},
		{
			// MinIO answers 400 AccessDenied here (AWS: 403
			// SignatureDoesNotMatch), with a message that gets the
			// direction backwards; either way it is refused.
			name: "signed header left out",
			req: func(t *testing.T) *http.Request {
				r := request(t, putURL(t), []byte("x"))
				r.Header.Del("Content-Type")
				return r
			},
			wantStatus: http.StatusBadRequest, wantCode: "AccessDenied", wantMsg: "headers present in the request which were not signed",
		},
		{
			name: "PUT URL used for DELETE",
			req: func(t *testing.T) *http.Request {
				r := request(t, putURL(t), nil)
				r.Method = http.MethodDelete
				return r
			},
			wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch",
		},
		{
			name: "expired (signed 2h ago for 1h)",
			req: func(t *testing.T) *http.Request {
				return request(t, getURL(t, now().Add(-2*time.Hour), "secret.txt"), nil)
			},
			wantStatus: http.StatusForbidden, wantCode: "AccessDenied", wantMsg: "Request has expired",
		},
		{
			name: "not yet valid (signed 1h ahead)",
			req: func(t *testing.T) *http.Request {
				return request(t, getURL(t, now().Add(time.Hour), "secret.txt"), nil)
			},
			wantStatus: http.StatusForbidden, wantCode: "AccessDenied", wantMsg: "not valid yet",
		},
		{
			name: "wrong secret",
			req: func(t *testing.T) *http.Request {
				u := other(t, func(k s3store.HMACKey) s3store.HMACKey { k.Secret += "x"; return k })
				su, err := u.Sign(t.Context(), sign.Request{Method: "GET", Bucket: f.bucket, Object: "secret.txt", Expires: time.Hour, Time: now()})
				if err != nil {
					t.Fatal(err)
				}
				return request(t, su, nil)
			},
			wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch",
		},
		{
			name: "unknown access key",
			req: func(t *testing.T) *http.Request {
				u := other(t, func(k s3store.HMACKey) s3store.HMACKey { k.AccessID = "nobody"; return k })
				su, err := u.Sign(t.Context(), sign.Request{Method: "GET", Bucket: f.bucket, Object: "secret.txt", Expires: time.Hour, Time: now()})
				if err != nil {
					t.Fatal(err)
				}
				return request(t, su, nil)
			},
			wantStatus: http.StatusForbidden, wantCode: "InvalidAccessKeyId",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.req(t))
			if r.status != tc.wantStatus || r.err.Code != tc.wantCode {
				t.Fatalf("got %d %q (%s), want %d %q", r.status, r.err.Code, r.err.Message, tc.wantStatus, tc.wantCode)
			}
			if !strings.Contains(r.err.Message, tc.wantMsg) {
				t.Errorf("message %q does not say %q", r.err.Message, tc.wantMsg)
			}
			if tc.wantStatus == http.StatusOK && string(r.body) != "the secret" {
				t.Errorf("body %q", r.body)
			}
		})
	}
}

// HMACKeyFn derives a key from another.
type HMACKeyFn func(s3store.HMACKey) s3store.HMACKey

// flipLastHex changes the last hex digit of the signature at the URL's end.
func flipLastHex(u string) string {
	last := u[len(u)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return u[:len(u)-1] + string(repl)
}

// TestMinIOPostPolicy uploads with a signed POST policy, then breaks each
// kind of condition once.
func TestMinIOPostPolicy(t *testing.T) {
	f := newFixture(t)
	policy := func(t *testing.T, key string, at time.Time) *sign.PostForm {
		form, err := f.signer.SignPostPolicy(t.Context(), sign.PostPolicy{
			Bucket: f.bucket, Object: key, Expires: 10 * time.Minute, Time: at,
			Fields:     map[string]string{"Content-Type": "text/plain", "success_action_status": "201"},
			Conditions: []sign.PolicyCondition{sign.ContentLengthRange(1, 1024)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return form
	}
	for _, tc := range []struct {
		name       string
		key        string
		body       []byte
		signedAgo  time.Duration
		alter      func(form *sign.PostForm)
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{name: "upload within the policy", key: "forms/ok.txt", body: []byte("hello from a form"), wantStatus: http.StatusCreated},
		{name: "too large for content-length-range", key: "forms/big.txt", body: bytes.Repeat([]byte("x"), 2048), wantStatus: http.StatusBadRequest, wantCode: "EntityTooLarge"},
		{name: "empty, below content-length-range", key: "forms/empty.txt", body: []byte{}, wantStatus: http.StatusBadRequest, wantCode: "EntityTooSmall"},
		{
			name: "key changed", key: "forms/k.txt", body: []byte("x"),
			alter:      func(form *sign.PostForm) { form.Fields["key"] = "forms/elsewhere.txt" },
			wantStatus: http.StatusForbidden, wantCode: "AccessDenied",
		},
		{
			name: "content type changed", key: "forms/ct.txt", body: []byte("x"),
			alter:      func(form *sign.PostForm) { form.Fields["Content-Type"] = "text/html" },
			wantStatus: http.StatusForbidden, wantCode: "AccessDenied",
		},
		{
			name: "policy expired", key: "forms/late.txt", body: []byte("x"), signedAgo: time.Hour,
			wantStatus: http.StatusForbidden, wantCode: "AccessDenied", wantMsg: "xpired",
		},
		{
			name: "signature tampered", key: "forms/sig.txt", body: []byte("x"),
			alter: func(form *sign.PostForm) {
				form.Fields["x-amz-signature"] = flipLastHex(form.Fields["x-amz-signature"])
			},
			wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := policy(t, tc.key, now().Add(-tc.signedAgo))
			if tc.alter != nil {
				tc.alter(form)
			}
			req, err := s3store.NewPostRequest(t.Context(), form, "upload.txt", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			r := do(t, req)
			if r.status != tc.wantStatus || r.err.Code != tc.wantCode {
				t.Fatalf("POST: got %d %q (%s), want %d %q", r.status, r.err.Code, r.err.Message, tc.wantStatus, tc.wantCode)
			}
			if !strings.Contains(r.err.Message, tc.wantMsg) {
				t.Errorf("message %q does not say %q", r.err.Message, tc.wantMsg)
			}
			if tc.wantStatus != http.StatusCreated {
				if _, err := f.client.Stat(t.Context(), f.bucket, tc.key, 0); err == nil {
					t.Errorf("refused upload stored %s anyway", tc.key)
				}
				return
			}
			got, err := f.client.Stat(t.Context(), f.bucket, tc.key, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got.Size != int64(len(tc.body)) || got.ContentType != "text/plain" {
				t.Errorf("stored %d bytes of %q, want %d of text/plain", got.Size, got.ContentType, len(tc.body))
			}
			get, err := f.signer.Sign(t.Context(), sign.Request{Method: "GET", Bucket: f.bucket, Object: tc.key, Expires: time.Minute, Time: now()})
			if err != nil {
				t.Fatal(err)
			}
			if r := do(t, request(t, get, nil)); !bytes.Equal(r.body, tc.body) {
				t.Errorf("downloaded %q, posted %q", r.body, tc.body)
			}
		})
	}
}
