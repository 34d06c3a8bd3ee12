package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// signOutput writes signed URLs as text (the URL alone), json (one object
// per line) or tsv (gsutil signurl's columns, with its header line).
type signOutput struct {
	format string
	w      *bufio.Writer
	enc    *json.Encoder
	header bool
}

func newSignOutput(w io.Writer, format string) (*signOutput, error) {
	switch format {
	case "text", "json", "tsv":
	default:
		return nil, fmt.Errorf("--output %q: must be text, json or tsv", format)
	}
	o := &signOutput{format: format, w: bufio.NewWriter(w)}
	o.enc = json.NewEncoder(o.w)
	o.enc.SetEscapeHTML(false)
	return o, nil
}

// signedJSON is one line of --output json.
type signedJSON struct {
	Resource  string            `json:"resource"`
	Method    string            `json:"method"`
	ExpiresAt string            `json:"expires_at"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// write emits one result and flushes, so that a consumer reading a pipe sees
// each URL as soon as it is signed.
func (o *signOutput) write(r signResult) error {
	u := r.url
	switch o.format {
	case "text":
		fmt.Fprintln(o.w, u.URL)
	case "json":
		line := signedJSON{Resource: r.resource, Method: u.Method, ExpiresAt: u.Expires.UTC().Format(time.RFC3339), URL: u.URL}
		if len(u.Headers) > 0 {
			line.Headers = make(map[string]string, len(u.Headers))
			for _, h := range u.Headers {
				line.Headers[h.Name] = h.Value
			}
		}
		if err := o.enc.Encode(line); err != nil {
			return err
		}
	case "tsv":
		if !o.header {
			fmt.Fprintln(o.w, "URL\tHTTP Method\tExpiration\tSigned URL")
			o.header = true
		}
		fmt.Fprintf(o.w, "%s\t%s\t%s\t%s\n", r.resource, u.Method, u.Expires.UTC().Format("2006-01-02 15:04:05"), u.URL)
	}
	return o.w.Flush()
}
