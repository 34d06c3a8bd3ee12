package durable

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func claims(now time.Time) Claims {
	return Claims{ID: NewID(), Bucket: "b", Object: "o/x.pdf", Generation: 7, Method: "GET",
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
}

func TestParse(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k1 := testKeys(t, "k1")
	tok, err := k1.Mint(claims(now))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	tampered := append([]byte(nil), raw...)
	tampered[len(tampered)-macLen-3] ^= 0x01 // inside the JSON payload
	forgedPayload := strings.Replace(string(raw[:len(raw)-macLen]), `"o":"o/x.pdf"`, `"o":"o/y.pdf"`, 1)
	tests := []struct {
		name string
		keys *Keys
		tok  string
		now  time.Time
		want error
	}{
		{name: "valid", keys: k1, tok: tok, now: now},
		{name: "expired", keys: k1, tok: tok, now: now.Add(time.Hour), want: ErrExpired},
		{name: "unknown key", keys: testKeys(t, "k2"), tok: tok, now: now, want: ErrUnknownKey},
		{name: "tampered byte", keys: k1, tok: base64.RawURLEncoding.EncodeToString(tampered), now: now, want: ErrMalformed},
		{name: "object swapped", keys: k1, tok: base64.RawURLEncoding.EncodeToString(append([]byte(forgedPayload), raw[len(raw)-macLen:]...)), now: now, want: ErrBadMAC},
		{name: "empty", keys: k1, tok: "", now: now, want: ErrMalformed},
		{name: "too long", keys: k1, tok: strings.Repeat("A", MaxTokenLen+1), now: now, want: ErrMalformed},
		{name: "padding", keys: k1, tok: tok + "==", now: now, want: ErrMalformed},
		{name: "short", keys: k1, tok: "AAAA", now: now, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.keys.Parse(tt.tok, tt.now)
			if tt.want == nil {
				if err != nil || c.Object != "o/x.pdf" || c.Generation != 7 || c.KeyID != "k1" {
					t.Fatalf("Parse: %+v, %v", c, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				// A flipped payload byte may still be JSON: then the MAC fails.
				if !(tt.name == "tampered byte" && errors.Is(err, ErrBadMAC)) {
					t.Fatalf("err %v, want %v", err, tt.want)
				}
			}
		})
	}
}

func TestMintIsDeterministic(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := testKeys(t, "k1")
	c := claims(now)
	a, err := k.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Mint(c)
	if a != b {
		t.Errorf("same claims, different tokens")
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	secret := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{name: "two keys", content: `[{"id":"a","secret":"` + secret + `"},{"id":"b","secret":"` + secret + `"}]`},
		{name: "empty list", content: `[]`, wantErr: "no keys"},
		{name: "short secret", content: `[{"id":"a","secret":"c2hvcnQ="}]`, wantErr: "at least 32"},
		{name: "duplicate id", content: `[{"id":"a","secret":"` + secret + `"},{"id":"a","secret":"` + secret + `"}]`, wantErr: "duplicate"},
		{name: "not base64", content: `[{"id":"a","secret":"!!"}]`, wantErr: "illegal base64"},
		{name: "not json", content: `{`, wantErr: "unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadKeys(p)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	k := testKeys(f, "k1")
	tok, _ := k.Mint(claims(now))
	f.Add(tok)
	f.Add("")
	f.Add("eyJ2IjoxfQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := k.Parse(s, now)
		if err == nil {
			// Only tokens this key minted authenticate: re-minting the
			// claims gives the same token.
			again, merr := k.Mint(c)
			if merr != nil || again != s {
				t.Fatalf("accepted a token that is not the canonical mint of its claims: %q", s)
			}
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadMAC) && !errors.Is(err, ErrExpired) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
