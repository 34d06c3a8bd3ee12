package sign

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/internal/vectors"
)

// conformanceKey is the dummy service account the GCS vectors are signed with.
func conformanceKey(t testing.TB) *KeySigner {
	t.Helper()
	s, err := ParseKey(vectors.Read(t, vectors.DummyKey), "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type conformanceFile struct {
	SigningV4Tests    []urlCase            `json:"signingV4Tests"`
	PostPolicyV4Tests []vectors.PostPolicy `json:"postPolicyV4Tests"`
}

type urlCase struct {
	Description              string            `json:"description"`
	Bucket                   string            `json:"bucket"`
	Object                   string            `json:"object"`
	Method                   string            `json:"method"`
	Expiration               int64             `json:"expiration"`
	Timestamp                time.Time         `json:"timestamp"`
	ExpectedURL              string            `json:"expectedUrl"`
	Headers                  map[string]string `json:"headers"`
	QueryParameters          map[string]string `json:"queryParameters"`
	Scheme                   string            `json:"scheme"`
	URLStyle                 string            `json:"urlStyle"`
	BucketBoundHostname      string            `json:"bucketBoundHostname"`
	ExpectedCanonicalRequest string            `json:"expectedCanonicalRequest"`
	ExpectedStringToSign     string            `json:"expectedStringToSign"`
	Hostname                 string            `json:"hostname"`
	ClientEndpoint           string            `json:"clientEndpoint"`
	EmulatorHostname         string            `json:"emulatorHostname"`
	UniverseDomain           string            `json:"universeDomain"`
}

func loadConformance(t testing.TB) conformanceFile {
	var f conformanceFile
	if err := json.Unmarshal(vectors.Read(t, vectors.GCS), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func sortedHeaders(m map[string]string) []Header {
	var hs []Header
	for k, v := range m {
		hs = append(hs, Header{k, v})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	return hs
}

func sortedParams(m map[string]string) []Param {
	var ps []Param
	for k, v := range m {
		ps = append(ps, Param{k, v})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

func (c urlCase) endpoint(t *testing.T) Endpoint {
	style, err := ParseStyle(c.URLStyle)
	if err != nil {
		t.Fatal(err)
	}
	return Endpoint{
		Scheme:              c.Scheme,
		Hostname:            c.Hostname,
		ClientEndpoint:      c.ClientEndpoint,
		EmulatorHost:        c.EmulatorHostname,
		UniverseDomain:      c.UniverseDomain,
		Style:               style,
		BucketBoundHostname: c.BucketBoundHostname,
	}
}

// canonicalRequestQuirk names the vector whose expectedCanonicalRequest
// disagrees with its own string-to-sign and URL (it keeps the bucket in the
// path of a virtual-hosted URL); the URL and string-to-sign are checked.
const canonicalRequestQuirk = "Universe domain with virtual hosted style"

func TestConformanceURLs(t *testing.T) {
	f := loadConformance(t)
	key := conformanceKey(t)
	if len(f.SigningV4Tests) != 29 {
		t.Errorf("expected 29 URL vectors, found %d", len(f.SigningV4Tests))
	}
	for _, c := range f.SigningV4Tests {
		t.Run(c.Description, func(t *testing.T) {
			u, err := New(key, &Options{Endpoint: c.endpoint(t)})
			if err != nil {
				t.Fatal(err)
			}
			req := Request{
				Method:  c.Method,
				Bucket:  c.Bucket,
				Object:  c.Object,
				Headers: sortedHeaders(c.Headers),
				Query:   sortedParams(c.QueryParameters),
				Expires: time.Duration(c.Expiration) * time.Second,
				Time:    c.Timestamp,
			}
			prep, err := u.Prepare(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := prep.Canonical.String(); got != c.ExpectedCanonicalRequest && c.Description != canonicalRequestQuirk {
				t.Errorf("canonical request:\n got %q\nwant %q", got, c.ExpectedCanonicalRequest)
			}
			if prep.StringToSign != c.ExpectedStringToSign {
				t.Errorf("string to sign:\n got %q\nwant %q", prep.StringToSign, c.ExpectedStringToSign)
			}
			signed, err := u.Sign(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if signed.URL != c.ExpectedURL {
				t.Errorf("url:\n got %s\nwant %s", signed.URL, c.ExpectedURL)
			}
		})
	}
}

func TestConformancePostPolicies(t *testing.T) {
	f := loadConformance(t)
	key := conformanceKey(t)
	if len(f.PostPolicyV4Tests) != 11 {
		t.Errorf("expected 11 POST policy vectors, found %d", len(f.PostPolicyV4Tests))
	}
	for _, c := range f.PostPolicyV4Tests {
		t.Run(c.Description, func(t *testing.T) {
			in := c.PolicyInput
			style, err := ParseStyle(in.URLStyle)
			if err != nil {
				t.Fatal(err)
			}
			u, err := New(key, &Options{Endpoint: Endpoint{Scheme: in.Scheme, Style: style, BucketBoundHostname: in.BucketBoundHostname}})
			if err != nil {
				t.Fatal(err)
			}
			var conds []PolicyCondition
			if r := in.Conditions.StartsWith; len(r) == 2 {
				conds = append(conds, StartsWith(r[0], r[1]))
			}
			if r := in.Conditions.ContentLengthRange; len(r) == 2 {
				conds = append(conds, ContentLengthRange(r[0], r[1]))
			}
			form, err := u.SignPostPolicy(context.Background(), PostPolicy{
				Bucket:     in.Bucket,
				Object:     in.Object,
				Expires:    time.Duration(in.Expiration) * time.Second,
				Time:       in.Timestamp,
				Fields:     in.Fields,
				Conditions: conds,
			})
			if err != nil {
				t.Fatal(err)
			}
			want := c.PolicyOutput
			// The vectors print the decoded policy with non-ASCII characters
			// unescaped, while the signed (base64) policy carries them as
			// \u00e9: compare the decoded form as JSON values, and the bytes
			// through the policy and signature fields below.
			var got, wantDoc any
			if err := json.Unmarshal([]byte(form.Policy), &got); err != nil {
				t.Fatalf("policy is not JSON: %v", err)
			}
			if err := json.Unmarshal([]byte(want.ExpectedDecodedPolicy), &wantDoc); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, wantDoc) {
				t.Errorf("decoded policy:\n got %s\nwant %s", form.Policy, want.ExpectedDecodedPolicy)
			}
			if form.URL != want.URL {
				t.Errorf("url: got %s, want %s", form.URL, want.URL)
			}
			for name, v := range want.Fields {
				if form.Fields[name] != v {
					t.Errorf("field %s:\n got %q\nwant %q", name, form.Fields[name], v)
				}
			}
			if len(form.Fields) != len(want.Fields) {
				t.Errorf("got %d fields, want %d: %v", len(form.Fields), len(want.Fields), form.Fields)
			}
		})
	}
}
