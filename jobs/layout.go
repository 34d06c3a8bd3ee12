package jobs

import (
	"fmt"
	"path"
	"strings"

	"github.com/linkissuer/linkissuer/schema"
)

// layout names every object a job writes. All names derive from the
// manifest location (or the state location, for topic output) and the root
// job ID, so a redelivered job or shard finds its own work:
//
//	PATH                          the final manifest
//	PATH minus ext + .errors.ext  the final errors file, when any object failed
//	PATH.parts/JOB/plan.json      the split plan (shard ranges), written once
//	PATH.parts/JOB/s00003         shard 3's manifest part
//	PATH.parts/JOB/s00003.errors  shard 3's error rows, when it has any
//	PATH.parts/JOB/done/s00003    shard 3's done marker (its counts)
//	PATH.parts/JOB/finish.lock    created by the one replica that composes
//	PATH.parts/JOB/complete.json  the completion message, once composed
//
// Parts, headers and intermediate composites are deleted after the final
// compose; plan, markers, lock and completion stay (a few hundred bytes
// each) so that late redeliveries stay no-ops. A lifecycle rule on
// "*.parts/" may delete them after a few days.
type layout struct {
	// scheme is "gs" or "s3": where the bucket is (see task.store).
	scheme string
	bucket string
	// manifest is the final manifest's object name; "" for topic output.
	manifest string
	// errors is the final errors file's object name.
	errors string
	// dir is the state prefix, ending in "/".
	dir string
}

// newLayout places job's files: beside its manifest, or under stateURI
// (gs://BUCKET/PREFIX) for topic output. rootID is the root job's ID.
func newLayout(job *schema.Job, rootID, stateURI string) (layout, error) {
	if m := job.Output.Manifest; m != nil {
		store, bucket, name, err := schema.ParseManifestURI("output.manifest.uri", m.URI)
		if err != nil {
			return layout{}, err
		}
		scheme := "gs"
		if store == schema.StoreS3 {
			scheme = "s3"
		}
		return layout{scheme: scheme, bucket: bucket, manifest: name, errors: ErrorsObject(name), dir: name + ".parts/" + rootID + "/"}, nil
	}
	if stateURI == "" {
		return layout{}, nil
	}
	bucket, prefix, err := splitStateURI(stateURI)
	if err != nil {
		return layout{}, err
	}
	dir := prefix + rootID + "/"
	return layout{scheme: "gs", bucket: bucket, errors: dir + "errors.jsonl", dir: dir}, nil
}

// splitStateURI splits gs://BUCKET[/PREFIX] into the bucket and a prefix
// that is empty or ends in "/".
func splitStateURI(uri string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(uri, "gs://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" {
		return "", "", fmt.Errorf("jobs: state location %q: want gs://BUCKET[/PREFIX]", uri)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return bucket, prefix, nil
}

// ok reports whether the layout has somewhere to write.
func (l layout) ok() bool { return l.bucket != "" }

func (l layout) uri(name string) string { return l.scheme + "://" + l.bucket + "/" + name }

func (l layout) plan() string              { return l.dir + "plan.json" }
func (l layout) part(i int) string         { return fmt.Sprintf("%ss%05d", l.dir, i) }
func (l layout) partErrors(i int) string   { return l.part(i) + ".errors" }
func (l layout) markerDir() string         { return l.dir + "done/" }
func (l layout) marker(i int) string       { return fmt.Sprintf("%ss%05d", l.markerDir(), i) }
func (l layout) lock() string              { return l.dir + "finish.lock" }
func (l layout) complete() string          { return l.dir + "complete.json" }
func (l layout) header(kind string) string { return l.dir + "header." + kind }
func (l layout) composite(kind string, level, i int) string {
	return fmt.Sprintf("%scompose.%s.%d.%05d", l.dir, kind, level, i)
}

// ErrorsObject names the errors file beside a manifest: ".errors" goes
// before the extension ("exports/a.jsonl" -> "exports/a.errors.jsonl"), or
// at the end when the name has none.
func ErrorsObject(manifest string) string {
	ext := path.Ext(manifest)
	if ext == "" || strings.Contains(ext, "/") || len(ext) == len(path.Base(manifest)) {
		return manifest + ".errors"
	}
	return strings.TrimSuffix(manifest, ext) + ".errors" + ext
}
