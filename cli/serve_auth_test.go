package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestPushAudiences(t *testing.T) {
	const svc = "https://linkissuer-abc123-ew.a.run.app"
	tests := []struct {
		name       string
		audiences  string
		serviceURL string
		insecure   bool
		want       []string
		wantErr    string
	}{
		{name: "nothing configured", wantErr: "--service-url"},
		{name: "insecure needs none", insecure: true},
		{name: "explicit audiences", audiences: "https://a.example/pubsub/push, custom", want: []string{"https://a.example/pubsub/push", "custom"}},
		{name: "service URL", serviceURL: svc + "/", want: []string{svc, svc + "/pubsub/push", svc + "/events"}},
		{name: "both", audiences: "custom", serviceURL: svc, want: []string{"custom", svc, svc + "/pubsub/push", svc + "/events"}},
		{name: "service URL with a path", serviceURL: svc + "/pubsub/push", wantErr: "LINKISSUER_SERVICE_URL"},
		{name: "service URL without scheme", serviceURL: "linkissuer.run.app", wantErr: "LINKISSUER_SERVICE_URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pushAudiences(tc.audiences, tc.serviceURL, tc.insecure)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("pushAudiences = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
