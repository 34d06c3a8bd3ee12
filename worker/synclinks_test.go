package worker

import (
	"strings"
	"testing"
)

func TestSyncLinkBatchBounds(t *testing.T) {
	f := &fakeIssuer{}
	h := newPushHarness(t, PushOptions{InsecureSkipAuth: true, Links: f})
	item := `{"bucket":"b","object":"o"}`
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "empty batch", body: `{"items":[]}`, wantStatus: 400, wantCode: "missing_field"},
		{name: "items and a single request", body: `{"bucket":"b","items":[` + item + `]}`, wantStatus: 400, wantCode: "invalid_field"},
		{name: "over the limit", body: `{"items":[` + strings.Repeat(item+",", MaxLinkBatch) + item + `]}`, wantStatus: 413, wantCode: "too_large"},
		{name: "at the limit", body: `{"items":[` + strings.Repeat(item+",", MaxLinkBatch-1) + item + `]}`, wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code := h.post(t, PathLinks, nil, []byte(tc.body))
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("got %d %q, want %d %q", status, code, tc.wantStatus, tc.wantCode)
			}
		})
	}
	if n := len(f.requests()); n != MaxLinkBatch {
		t.Errorf("issuer saw %d requests, want %d (only the batch at the limit is issued)", n, MaxLinkBatch)
	}
}
