// Package jobstest is what the tests of bulk export jobs share (in jobs,
// s3store and cli): fake-gcs-server in process with a client of its JSON
// API and a signer for links to it, a manifest read back row by row, and a
// link fetched over HTTP as its recipient would fetch it.
package jobstest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// GCS starts fake-gcs-server on a loopback port with the given buckets, and
// returns it with a client of its JSON API at its URL, as
// STORAGE_EMULATOR_HOST gives (the server's own Client() reads objects back
// empty). Both end with the test.
func GCS(t testing.TB, buckets ...string) (*fakestorage.Server, *storage.Client) {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucket(b)
	}
	client, err := storage.NewClient(context.Background(), option.WithEndpoint(srv.URL()+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return srv, client
}

// HMACSigner signs GOOG4-HMAC links to srv's objects with a test key: the
// signer of manifests kept on the stand-in.
func HMACSigner(t testing.TB, srv *fakestorage.Server) *sign.URLSigner {
	t.Helper()
	hs, err := sign.NewHMACSigner("GOOG1EXAMPLE", "manifest-secret")
	if err != nil {
		t.Fatal(err)
	}
	u, err := sign.New(hs, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// ManifestRows decodes every row of a manifest (with the CSV header, for
// CSV), failing the test on a malformed one.
func ManifestRows(t testing.TB, data []byte, format schema.ManifestFormat) []*schema.ManifestRow {
	t.Helper()
	rr, err := schema.NewRowReader(bytes.NewReader(data), format, schema.ManifestCSVHeader)
	if err != nil {
		t.Fatal(err)
	}
	var rows []*schema.ManifestRow
	for {
		row, err := rr.ReadRow()
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
}

// Get fetches url (a signed link) with a plain GET and returns the body; it
// fails the test unless the answer is 200.
func Get(t testing.TB, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		path, _, _ := strings.Cut(url, "?")
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body
}
