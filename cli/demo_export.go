package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/schema"
)

// demoManifestBucket holds the export's manifest. It has no notification
// config, so writing the manifest does not itself produce a link.
const demoManifestBucket = "demo-manifests"

// export runs a small bulk export job (linkissuer.job.v1) whole, in this
// process, with the runner `linkissuer export` builds (app.NewExport):
// list the demo bucket, sign every object keyless, stream the links into a
// JSONL manifest, and sign a link to the manifest itself. Then it fetches
// the manifest through that link and shows its first rows.
func (d *demoRun) export(ctx context.Context) error {
	st := d.st
	job := &schema.Job{
		JobID:     "demo-export-1",
		Source:    schema.JobSource{Bucket: st.Bucket},
		Method:    "GET",
		ExpiresIn: "15m",
		Output: schema.JobOutput{Manifest: &schema.ManifestTarget{
			URI: "gs://" + demoManifestBucket + "/exports/demo-export-1.jsonl", Format: schema.FormatJSONL,
		}},
	}
	d.step("Running a bulk export job: a signed link for every object of a bucket, in a manifest")
	d.say("job %s: source gs://%s/, output %s", job.JobID, job.Source.Bucket, job.Output.Manifest.URI)

	st.Storage.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: demoManifestBucket})
	// Built as `linkissuer export --service-account SA --iam-endpoint URL
	// --endpoint HOST --concurrency 8` builds it; the Cloud Storage client
	// finds the stand-in through STORAGE_EMULATOR_HOST.
	var cfg config.Export
	if err := app.ParseArgs(&cfg, "--service-account", st.IAM.Email(), "--iam-endpoint", st.IAM.Endpoint(),
		"--endpoint", st.StorageHost, "--concurrency", "8"); err != nil {
		return err
	}
	exp, err := app.NewExport(ctx, &cfg, job, nil, nil)
	if err != nil {
		return err
	}
	defer exp.Close()
	done, err := exp.Runner.Run(ctx, job)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	c := done.Counts
	d.say("done in %s: %d listed, %d signed, %d refused by policy, %d failed", time.Duration(done.DurationMS)*time.Millisecond, c.Listed, c.Signed, c.Skipped, c.Failed)
	if done.Manifest == nil {
		return fmt.Errorf("export: no manifest in the completion message")
	}
	d.say("manifest %s (%s), shared by its own signed link, valid until %s:", done.Manifest.URI, done.Manifest.Format, done.Manifest.URLExpiresAt.Format("15:04:05 MST"))
	d.say("  %s", done.Manifest.URL)

	rows, err := firstManifestRows(ctx, done.Manifest.URL, 3)
	if err != nil {
		return err
	}
	d.say("its first rows (URLs shortened here):")
	for _, r := range rows {
		path, _, _ := strings.Cut(r.URL, "?")
		r.URL = path + "?X-Goog-Algorithm=…"
		line, _ := json.Marshal(r)
		d.say("  %s", line)
	}
	if c.Signed != int64(len(demoObjects)) || len(rows) == 0 {
		return fmt.Errorf("export signed %d objects and the manifest shows %d rows; want %d objects", c.Signed, len(rows), len(demoObjects))
	}
	return nil
}

// firstManifestRows GETs a JSONL manifest through its signed URL and
// decodes its first n rows.
func firstManifestRows(ctx context.Context, signedURL string, n int) ([]schema.ManifestRow, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, signedURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("manifest: GET %s", resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var rows []schema.ManifestRow
	for len(rows) < n && sc.Scan() {
		var r schema.ManifestRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("manifest row %d: %w", len(rows)+1, err)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}
