package s3store

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/linkissuer/linkissuer/sign"
)

// The benchmarks sign one S3 GET per iteration, with the request
// sign/bench_test.go uses (an object name that needs escaping, a
// response-content-disposition override, one hour), virtual-hosted on AWS
// in us-east-1, and compare linkissuer with the presigner S3 users call:
// aws-sdk-go-v2's s3.PresignClient (the whole SDK operation stack, not only
// the V4 signer that sign.BenchmarkAWSPresignHTTP measures). Results in
// BENCHMARKS.md:
//
//	go test -run '^$' -bench . -benchmem ./s3store/

const (
	benchBucket      = "test-bucket"
	benchObject      = "reports/2026/Q1 report.pdf"
	benchDisposition = `attachment; filename="Q1 report.pdf"`
)

// benchConfig addresses AWS as the SDK does: virtual-hosted on the
// regional host (our default for us-east-1 is the global s3.amazonaws.com).
var benchConfig = Config{Endpoint: "https://s3.us-east-1.amazonaws.com", Region: "us-east-1", Style: "virtual", Key: testKey}

func benchSigner(b *testing.B) *sign.URLSigner {
	b.Helper()
	u, err := benchConfig.URLSigner()
	if err != nil {
		b.Fatal(err)
	}
	return u
}

func benchRequest() sign.Request {
	return sign.Request{
		Method:  "GET",
		Bucket:  benchBucket,
		Object:  benchObject,
		Query:   []sign.Param{{Name: "response-content-disposition", Value: benchDisposition}},
		Expires: time.Hour,
		Time:    time.Date(2019, 2, 1, 9, 0, 0, 0, time.UTC),
	}
}

func benchPresigner() *s3.PresignClient {
	client := s3.New(s3.Options{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(testKey.AccessID, testKey.Secret, ""),
	})
	return s3.NewPresignClient(client, s3.WithPresignExpires(time.Hour))
}

var benchInput = &s3.GetObjectInput{
	Bucket:                     aws.String(benchBucket),
	Key:                        aws.String(benchObject),
	ResponseContentDisposition: aws.String(benchDisposition),
}

// BenchmarkURLSigner is one AWS4-HMAC-SHA256 URL from Config.URLSigner.
func BenchmarkURLSigner(b *testing.B) {
	u := benchSigner(b)
	req := benchRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := u.Sign(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSDKPresignGetObject is aws-sdk-go-v2's s3.PresignClient on the
// same GET.
func BenchmarkSDKPresignGetObject(b *testing.B) {
	p := benchPresigner()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.PresignGetObject(ctx, benchInput); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPairedURLSignerVsSDKPresign alternates both in one loop, so that
// both see the same machine load, and reports the speed-up.
func BenchmarkPairedURLSignerVsSDKPresign(b *testing.B) {
	u := benchSigner(b)
	req := benchRequest()
	p := benchPresigner()
	ctx := context.Background()
	var ours, sdk time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := u.Sign(ctx, req); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := p.PresignGetObject(ctx, benchInput); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		ours += t1.Sub(t0)
		sdk += t2.Sub(t1)
	}
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "ours-ns/op")
	b.ReportMetric(float64(sdk.Nanoseconds())/float64(b.N), "sdk-ns/op")
	b.ReportMetric(float64(sdk)/float64(ours), "x-faster")
}

// TestBenchmarkURLsAgree checks that the two benchmarked calls make the
// same link: the same host, path and signing parameters, and the same
// signature once the SDK's x-id=GetObject marker is signed in too.
func TestBenchmarkURLsAgree(t *testing.T) {
	sdk, err := benchPresigner().PresignGetObject(t.Context(), benchInput)
	if err != nil {
		t.Fatal(err)
	}
	su, err := url.Parse(sdk.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := su.Query()
	at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	req := benchRequest()
	req.Time = at
	req.Query = append(req.Query, sign.Param{Name: "x-id", Value: q.Get("x-id")})
	ours, err := benchConfig.URLSigner()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ours.Sign(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	ou, err := url.Parse(got.URL)
	if err != nil {
		t.Fatal(err)
	}
	if ou.Host != su.Host || ou.EscapedPath() != su.EscapedPath() {
		t.Errorf("ours %s%s, SDK %s%s", ou.Host, ou.EscapedPath(), su.Host, su.EscapedPath())
	}
	for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Expires", "X-Amz-SignedHeaders", "response-content-disposition"} {
		if a, b := ou.Query().Get(name), q.Get(name); a != b {
			t.Errorf("%s: ours %q, SDK %q", name, a, b)
		}
	}
	if ou.Query().Get("X-Amz-Signature") != q.Get("X-Amz-Signature") {
		t.Errorf("signatures differ (not shown)")
	}
}
