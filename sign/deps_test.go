package sign_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPureCoreLinksNoRPCStack holds the pure core to its contract: schema,
// sign and policy build, canonicalize, sign and verify without any RPC
// stack. The IAM signer (sign/iam) and the storage and Pub/Sub clients sit
// outside it.
func TestPureCoreLinksNoRPCStack(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH (%v): cannot list the dependencies", err)
	}
	const module = "github.com/linkissuer/linkissuer/"
	pure := []string{module + "schema", module + "sign", module + "policy"}
	out, err := exec.Command(goCmd, append([]string{"list", "-deps"}, pure...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	listed := map[string]bool{}
	for _, d := range deps {
		listed[d] = true
	}
	for _, p := range pure {
		if !listed[p] {
			t.Fatalf("go list -deps did not list %s itself: %q", p, deps)
		}
	}
	forbidden := []string{"google.golang.org/grpc", "google.golang.org/api", "cloud.google.com/go/"}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("the pure core links %s (forbidden: %s...); move the code that needs it out of schema, sign and policy", d, f)
			}
		}
	}
}
