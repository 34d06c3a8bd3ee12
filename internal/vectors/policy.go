package vectors

import (
	"encoding/json"
	"testing"
	"time"
)

// PostPolicy is one of Google's V4 POST policy conformance cases
// (postPolicyV4Tests in GCS).
type PostPolicy struct {
	Description string `json:"description"`
	PolicyInput struct {
		Scheme              string            `json:"scheme"`
		URLStyle            string            `json:"urlStyle"`
		BucketBoundHostname string            `json:"bucketBoundHostname"`
		Bucket              string            `json:"bucket"`
		Object              string            `json:"object"`
		Expiration          int64             `json:"expiration"`
		Timestamp           time.Time         `json:"timestamp"`
		Fields              map[string]string `json:"fields"`
		Conditions          struct {
			ContentLengthRange []int64  `json:"contentLengthRange"`
			StartsWith         []string `json:"startsWith"`
		} `json:"conditions"`
	} `json:"policyInput"`
	PolicyOutput struct {
		URL                   string            `json:"url"`
		Fields                map[string]string `json:"fields"`
		ExpectedDecodedPolicy string            `json:"expectedDecodedPolicy"`
	} `json:"policyOutput"`
}

// PostPolicies returns the POST policy cases of GCS, failing t when the
// file cannot be read or parsed.
func PostPolicies(t testing.TB) []PostPolicy {
	t.Helper()
	var f struct {
		Tests []PostPolicy `json:"postPolicyV4Tests"`
	}
	if err := json.Unmarshal(Read(t, GCS), &f); err != nil {
		t.Fatal(err)
	}
	return f.Tests
}
