// Package vectors locates the third-party test vectors vendored in the
// repository's testdata/ directory (Google's V4 conformance vectors, the AWS
// SigV4 suites), so that tests in any package read them by the same
// relative name and a fresh clone runs them with nothing beside it.
package vectors

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Well-known files.
const (
	// GCS is Google's V4 signing conformance file.
	GCS = "conformance/v4_signatures.json"
	// DummyKey is the service-account key the GCS vectors are signed with.
	DummyKey = "conformance/test_service_account.not-a-test.json"
	// S3DocExample is the S3 documentation's presign example.
	S3DocExample = "sigv4/s3_presign_doc_example.json"
	// AWSSuite is the aws-c-auth SigV4 test-suite directory.
	AWSSuite = "sigv4/aws-signing-test-suite-v4"
)

// Root is the absolute path of the repository's testdata/ directory.
func Root() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("vectors: cannot locate the source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// Path is the absolute path of rel inside testdata/.
func Path(rel string) string { return filepath.Join(Root(), filepath.FromSlash(rel)) }

// Read returns the file rel inside testdata/, failing t when it cannot.
func Read(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(Path(rel))
	if err != nil {
		t.Fatalf("vendored test vector: %v", err)
	}
	return data
}
