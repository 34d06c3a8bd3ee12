package schema

import "time"

// JobDoneV1 is the schema attribute value of a job completion message.
const JobDoneV1 = "linkissuer.job_done.v1"

// JobDone is a linkissuer.job_done.v1 message, published once per root job
// (never per shard) to the job's notify_topic when the final manifest is in
// place.
type JobDone struct {
	JobID string `json:"job_id"`
	// Manifest is set for manifest output; ResultsTopic for topic output.
	Manifest     *ManifestResult `json:"manifest,omitempty"`
	ResultsTopic string          `json:"results_topic,omitempty"`
	// ErrorsURI is the gs:// URI of the errors file (ErrorRow rows), set only
	// when at least one object was refused or failed.
	ErrorsURI string    `json:"errors_uri,omitempty"`
	Counts    JobCounts `json:"counts"`
	// Shards is how many shards ran; 1 for an unsplit job.
	Shards     int       `json:"shards"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS int64     `json:"duration_ms"`
}

// ManifestResult locates the final manifest and carries a signed GET URL
// for it.
type ManifestResult struct {
	URI    string         `json:"uri"`
	Format ManifestFormat `json:"format"`
	// URL is a signed GET URL to the manifest; URLExpiresAt is when it stops
	// working.
	URL          string    `json:"url"`
	URLExpiresAt time.Time `json:"url_expires_at"`
}

// JobCounts are a job's totals over all shards. Listed = Signed + Skipped +
// Failed: every listed object is accounted for.
type JobCounts struct {
	// Listed objects (or explicit entries) considered.
	Listed int64 `json:"listed"`
	// Signed objects, each one manifest row or link message.
	Signed int64 `json:"signed"`
	// Skipped objects, refused by policy; each is an error row with its
	// reason.
	Skipped int64 `json:"skipped"`
	// Failed objects, whose signing failed permanently; each is an error row.
	Failed int64 `json:"failed"`
}

// NewJobDone fills in DurationMS from the two times, truncates the manifest
// URL's expiry to the second (as the URL itself does) and validates the
// result.
func NewJobDone(d JobDone) (*JobDone, error) {
	d.StartedAt, d.FinishedAt = d.StartedAt.UTC(), d.FinishedAt.UTC()
	d.DurationMS = d.FinishedAt.Sub(d.StartedAt).Milliseconds()
	if d.Manifest != nil {
		d.Manifest.URLExpiresAt = d.Manifest.URLExpiresAt.UTC().Truncate(time.Second)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// Validate checks d without modifying it.
func (d *JobDone) Validate() error {
	if err := validateJobID("job_id", d.JobID, MaxRootJobIDLen); err != nil {
		return err
	}
	switch {
	case d.Manifest == nil && d.ResultsTopic == "":
		return fieldErr(CodeMissingField, "manifest", "give manifest or results_topic")
	case d.Manifest != nil && d.ResultsTopic != "":
		return fieldErr(CodeInvalidField, "manifest", "give manifest or results_topic, not both")
	case d.ResultsTopic != "":
		if err := ValidateTopic("results_topic", d.ResultsTopic); err != nil {
			return err
		}
	default:
		m := d.Manifest
		if _, _, _, err := ParseManifestURI("manifest.uri", m.URI); err != nil {
			return err
		}
		if !m.Format.Known() {
			return fieldErr(CodeInvalidField, "manifest.format", "%s is not %s", quoteShort(string(m.Format)), formatChoices())
		}
		if m.URL == "" {
			return fieldErr(CodeMissingField, "manifest.url", "missing")
		}
		if !m.URLExpiresAt.After(d.FinishedAt) {
			return fieldErr(CodeExpiryOutOfRange, "manifest.url_expires_at", "not after finished_at")
		}
	}
	if d.ErrorsURI != "" {
		if _, _, _, err := ParseManifestURI("errors_uri", d.ErrorsURI); err != nil {
			return err
		}
	}
	c := d.Counts
	switch {
	case c.Listed < 0 || c.Signed < 0 || c.Skipped < 0 || c.Failed < 0:
		return fieldErr(CodeInvalidField, "counts", "negative count")
	case c.Signed+c.Skipped+c.Failed != c.Listed:
		return fieldErr(CodeInvalidField, "counts", "signed %d + skipped %d + failed %d != listed %d", c.Signed, c.Skipped, c.Failed, c.Listed)
	case d.Shards < 1:
		return fieldErr(CodeInvalidField, "shards", "must be at least 1")
	case d.StartedAt.IsZero() || d.FinishedAt.Before(d.StartedAt):
		return fieldErr(CodeInvalidField, "finished_at", "must not be before started_at")
	case d.DurationMS != d.FinishedAt.Sub(d.StartedAt).Milliseconds():
		return fieldErr(CodeInvalidField, "duration_ms", "does not match finished_at - started_at")
	}
	return nil
}

// Data is d's message data, compact JSON.
func (d *JobDone) Data() ([]byte, error) { return marshal(d) }

// Attributes are d's Pub/Sub attributes: schema and job_id.
func (d *JobDone) Attributes() map[string]string {
	return map[string]string{AttrSchema: JobDoneV1, AttrJobID: d.JobID}
}
