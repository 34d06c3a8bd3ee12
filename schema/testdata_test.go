package schema

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// corpusCase is one file of testdata/good or testdata/bad; the format is
// documented in testdata/README.md. Other packages' tests that feed the corpus
// through Pub/Sub or HTTP load the same files (this helper is test-only, so
// they carry their own copy of these few lines).
type corpusCase struct {
	File        string            `json:"-"`
	Description string            `json:"description"`
	Transport   string            `json:"transport"` // "pubsub" (default) or "http"
	Attributes  map[string]string `json:"attributes"`
	Headers     map[string]string `json:"headers"`
	RawData     *string           `json:"data"`
	DataBase64  *string           `json:"data_base64"`
	DataJSON    json.RawMessage   `json:"data_json"`
	Expect      corpusExpect      `json:"expect"`

	// Data is the message data (or HTTP body), decoded from whichever data
	// key the file uses.
	Data []byte `json:"-"`
}

type corpusExpect struct {
	// Good cases.
	Kind   string `json:"kind"`
	Ignore string `json:"ignore"`
	// Bad cases.
	ReasonCode string `json:"reason_code"`
	Field      string `json:"field"`
	Stage      string `json:"stage"` // "parse" or "policy"
}

// Header returns the case's HTTP headers as an http.Header.
func (c *corpusCase) Header() http.Header {
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	return h
}

// loadCorpus reads every *.json file of dir, sorted by name.
func loadCorpus(t testing.TB, dir string) []*corpusCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no corpus files in %s", dir)
	}
	sort.Strings(files)
	var out []*corpusCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c corpusCase
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.File = filepath.Base(f)
		n := 0
		if c.RawData != nil {
			n++
			c.Data = []byte(*c.RawData)
		}
		if c.DataBase64 != nil {
			n++
			if c.Data, err = base64.StdEncoding.DecodeString(*c.DataBase64); err != nil {
				t.Fatalf("%s: data_base64: %v", f, err)
			}
		}
		if c.DataJSON != nil {
			n++
			c.Data = []byte(c.DataJSON)
		}
		if n > 1 {
			t.Fatalf("%s: use at most one of data, data_base64, data_json", f)
		}
		switch c.Transport {
		case "":
			c.Transport = "pubsub"
		case "pubsub", "http":
		default:
			t.Fatalf("%s: unknown transport %q", f, c.Transport)
		}
		if c.Attributes == nil {
			c.Attributes = map[string]string{}
		}
		out = append(out, &c)
	}
	return out
}
