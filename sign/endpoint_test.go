package sign

import (
	"strings"
	"testing"
)

// TestEndpointVirtualStyleOnIP checks that virtual-hosted style is refused
// where the host is an IP address (BUCKET.127.0.0.1 is no host name), and
// allowed wherever a bucket can be a subdomain.
func TestEndpointVirtualStyleOnIP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		e       Endpoint
		wantErr string // "" means valid
	}{
		{name: "IPv4 client endpoint", e: Endpoint{Style: VirtualHostedStyle, ClientEndpoint: "http://127.0.0.1:4443"}, wantErr: `"127.0.0.1:4443" is an IP address`},
		{name: "IPv4 emulator host without scheme", e: Endpoint{Style: VirtualHostedStyle, EmulatorHost: "10.0.0.7:9000"}, wantErr: "IP address"},
		{name: "IPv6 hostname", e: Endpoint{Style: VirtualHostedStyle, Hostname: "[::1]:9000"}, wantErr: "IP address"},
		{name: "IPv4 hostname without port", e: Endpoint{Style: VirtualHostedStyle, Hostname: "192.168.1.2"}, wantErr: "use path style"},
		{name: "hostname wins over an IP endpoint", e: Endpoint{Style: VirtualHostedStyle, Hostname: "storage.example.com", ClientEndpoint: "http://127.0.0.1:4443"}},
		{name: "DNS endpoint", e: Endpoint{Style: VirtualHostedStyle, ClientEndpoint: "https://minio.internal:9000"}},
		{name: "default host", e: Endpoint{Style: VirtualHostedStyle}},
		{name: "universe domain", e: Endpoint{Style: VirtualHostedStyle, UniverseDomain: "example-universe.com"}},
		{name: "path style on an IP", e: Endpoint{Style: PathStyle, ClientEndpoint: "http://127.0.0.1:4443"}},
		{name: "bound style with an IP endpoint", e: Endpoint{Style: BucketBoundHostname, BucketBoundHostname: "cdn.example.com", ClientEndpoint: "http://127.0.0.1:4443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsInputError(err) {
				t.Fatalf("Validate = %v, want an input error saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestEndpointUniverseDomain checks where the universe domain puts links, and
// that the explicit hosts still win over it.
func TestEndpointUniverseDomain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		e        Endpoint
		wantHost string
	}{
		{name: "path style", e: Endpoint{UniverseDomain: "example-universe.com"}, wantHost: "storage.example-universe.com"},
		{name: "virtual style", e: Endpoint{UniverseDomain: "example-universe.com", Style: VirtualHostedStyle}, wantHost: "b.storage.example-universe.com"},
		{name: "emulator wins", e: Endpoint{UniverseDomain: "example-universe.com", EmulatorHost: "127.0.0.1:4443"}, wantHost: "127.0.0.1:4443"},
		{name: "client endpoint wins", e: Endpoint{UniverseDomain: "example-universe.com", ClientEndpoint: "https://private.example.com"}, wantHost: "private.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.e.resolve(GOOG4, "auto")
			if got, _, _ := tg.place("b"); got != tc.wantHost {
				t.Errorf("host %q, want %q", got, tc.wantHost)
			}
		})
	}
}
