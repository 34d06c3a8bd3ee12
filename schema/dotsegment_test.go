package schema

import "testing"

func TestHasDotSegment(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"public/../private/secret", true},
		{"public/./a", true},
		{"..", true},
		{"a/..", true},
		{"../a", true},
		{"public/%2e%2e/private", true},
		{"public/%2E./private", true},
		{"public/%2e/a", true},
		{"public/a..b", false},
		{"public/.hidden", false},
		{"public/.../a", false},
		{"public/%2e%2e%2e/a", false},
		{"public//a", false},
		{"public/%2f../a", false},
		{"public/%2", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := HasDotSegment(tc.name); got != tc.want {
			t.Errorf("HasDotSegment(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
