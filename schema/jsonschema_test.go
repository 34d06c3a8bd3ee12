package schema

// The JSON Schema files are checked with a small hand-written validator
// rather than github.com/santhosh-tekuri/jsonschema/v6: go.mod is shared and
// must not gain a test-only dependency (nor be tidied) while other packages
// are in flight, and our schemas use a small keyword set. To keep that
// honest, TestJSONSchemaFiles fails if any schema uses a keyword this
// checker does not implement, so no constraint is ever silently skipped.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

const draft202012 = "https://json-schema.org/draft/2020-12/schema"

// Keywords the checker enforces, and annotations it may ignore.
var (
	assertKeywords = []string{"$ref", "type", "enum", "const", "properties", "required", "additionalProperties",
		"propertyNames", "items", "minItems", "maxItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
		"oneOf", "anyOf"}
	annotationKeywords = []string{"$schema", "$id", "$defs", "title", "description", "$comment", "format", "contentEncoding"}
)

type schemaSet struct {
	byID map[string]any
}

func decodeUseNumber(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

func loadSchemaSet(t *testing.T) *schemaSet {
	t.Helper()
	s := &schemaSet{byID: map[string]any{}}
	files, err := fs.Glob(JSONSchemas(), "*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no embedded schemas: %v", err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(JSONSchemas(), f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := decodeUseNumber(b)
		if err != nil {
			t.Fatalf("%s is not valid JSON: %v", f, err)
		}
		m, ok := doc.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a JSON object", f)
		}
		if m["$schema"] != draft202012 {
			t.Errorf("%s: $schema = %v, want %s", f, m["$schema"], draft202012)
		}
		wantID := "urn:linkissuer:schema:" + strings.TrimSuffix(f, ".json")
		if m["$id"] != wantID {
			t.Errorf("%s: $id = %v, want %s", f, m["$id"], wantID)
		}
		checkKeywords(t, f, "", doc)
		s.byID[wantID] = doc
	}
	return s
}

// checkKeywords walks every subschema and fails on unknown keywords.
func checkKeywords(t *testing.T, file, path string, sch any) {
	t.Helper()
	m, ok := sch.(map[string]any)
	if !ok {
		if _, isBool := sch.(bool); !isBool {
			t.Errorf("%s %s: schema is %T, want an object or a boolean", file, path, sch)
		}
		return
	}
	for k, v := range m {
		switch {
		case !slices.Contains(assertKeywords, k) && !slices.Contains(annotationKeywords, k):
			t.Errorf("%s %s: keyword %q is not implemented by the test checker", file, path, k)
		case k == "properties" || k == "$defs":
			for name, sub := range v.(map[string]any) {
				checkKeywords(t, file, path+"/"+k+"/"+name, sub)
			}
		case k == "additionalProperties" || k == "items" || k == "propertyNames":
			checkKeywords(t, file, path+"/"+k, v)
		case k == "oneOf" || k == "anyOf":
			for i, sub := range v.([]any) {
				checkKeywords(t, file, fmt.Sprintf("%s/%s/%d", path, k, i), sub)
			}
		}
	}
}

// validate checks inst against the schema with the given $id and returns
// every violation.
func (s *schemaSet) validate(id string, inst any) []string {
	root, ok := s.byID[id]
	if !ok {
		return []string{"no schema " + id}
	}
	var errs []string
	s.check(root, root, inst, "", &errs)
	return errs
}

func (s *schemaSet) check(root, sch, inst any, path string, errs *[]string) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Sprintf("%s: ", orRoot(path))+fmt.Sprintf(format, args...))
	}
	if b, ok := sch.(bool); ok {
		if !b {
			fail("not allowed")
		}
		return
	}
	m := sch.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		target, newRoot := s.resolve(root, ref)
		if target == nil {
			fail("unresolvable $ref %s", ref)
			return
		}
		s.check(newRoot, target, inst, path, errs)
	}
	if typ, ok := m["type"]; ok {
		var types []string
		switch v := typ.(type) {
		case string:
			types = []string{v}
		case []any:
			for _, x := range v {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(tp string) bool { return hasType(inst, tp) }) {
			fail("type %s, want %v", jsonType(inst), types)
			return
		}
	}
	if enum, ok := m["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, inst) }) {
		fail("%v is not one of %v", inst, enum)
	}
	if c, ok := m["const"]; ok && !reflect.DeepEqual(c, inst) {
		fail("%v, want %v", inst, c)
	}
	if one := anySlice(m["oneOf"]); one != nil {
		n := 0
		for _, sub := range one {
			var e []string
			s.check(root, sub, inst, path, &e)
			if len(e) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches %d of the oneOf alternatives, want exactly 1", n)
		}
	}
	if anyOf := anySlice(m["anyOf"]); anyOf != nil && !slices.ContainsFunc(anyOf, func(sub any) bool {
		var e []string
		s.check(root, sub, inst, path, &e)
		return len(e) == 0
	}) {
		fail("matches none of the anyOf alternatives")
	}
	switch v := inst.(type) {
	case map[string]any:
		props, _ := m["properties"].(map[string]any)
		for _, r := range anySlice(m["required"]) {
			if _, ok := v[r.(string)]; !ok {
				fail("required property %q missing", r)
			}
		}
		for k, val := range v {
			if pn, ok := m["propertyNames"]; ok {
				s.check(root, pn, k, path+"/"+k+"(name)", errs)
			}
			if sub, ok := props[k]; ok {
				s.check(root, sub, val, path+"/"+k, errs)
			} else if ap, ok := m["additionalProperties"]; ok {
				s.check(root, ap, val, path+"/"+k, errs)
			}
		}
	case []any:
		if n, ok := number(m["minItems"]); ok && float64(len(v)) < n {
			fail("%d items, want at least %v", len(v), n)
		}
		if n, ok := number(m["maxItems"]); ok && float64(len(v)) > n {
			fail("%d items, want at most %v", len(v), n)
		}
		if items, ok := m["items"]; ok {
			for i, x := range v {
				s.check(root, items, x, fmt.Sprintf("%s/%d", path, i), errs)
			}
		}
	case string:
		n := float64(utf8.RuneCountInString(v))
		if min, ok := number(m["minLength"]); ok && n < min {
			fail("length %v, want at least %v", n, min)
		}
		if max, ok := number(m["maxLength"]); ok && n > max {
			fail("length %v, want at most %v", n, max)
		}
		if p, ok := m["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			fail("%.60q does not match %s", v, p)
		}
	case json.Number:
		f, _ := v.Float64()
		if min, ok := number(m["minimum"]); ok && f < min {
			fail("%v < minimum %v", v, min)
		}
		if max, ok := number(m["maximum"]); ok && f > max {
			fail("%v > maximum %v", v, max)
		}
	}
}

func (s *schemaSet) resolve(root any, ref string) (target, newRoot any) {
	doc, frag, _ := strings.Cut(ref, "#")
	if doc != "" {
		root = s.byID[doc]
	}
	cur := root
	for _, part := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if part == "" {
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, nil
		}
		cur = m[part]
	}
	return cur, root
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func hasType(inst any, typ string) bool {
	switch typ {
	case "integer":
		n, ok := inst.(json.Number)
		return ok && !strings.ContainsAny(string(n), ".eE")
	case "number":
		_, ok := inst.(json.Number)
		return ok
	}
	return jsonType(inst) == typ
}

func jsonType(inst any) string {
	switch inst.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", inst)
}

func orRoot(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

func schemaID(name string) string { return "urn:linkissuer:schema:" + name }

func mustDecode(t *testing.T, b []byte) any {
	t.Helper()
	v, err := decodeUseNumber(b)
	if err != nil {
		t.Fatalf("decode %.80s: %v", b, err)
	}
	return v
}

func attrsValue(a map[string]string) any {
	m := make(map[string]any, len(a))
	for k, v := range a {
		m[k] = v
	}
	return m
}

func TestJSONSchemaFiles(t *testing.T) {
	set := loadSchemaSet(t)
	for _, name := range []string{JobV1, LinkV1, LinkV1 + ".attributes", JobDoneV1, DeadLetterV1, ManifestRowV1,
		ManifestErrorRowV1, GCSNotificationV1, GCSNotificationV1 + ".attributes", CloudEventStorageV1} {
		if _, err := JSONSchema(name); err != nil {
			t.Error(err)
		}
		if _, ok := set.byID[schemaID(name)]; !ok {
			t.Errorf("no schema with $id %s", schemaID(name))
		}
	}
	if _, err := JSONSchema("linkissuer.nope.v1"); err == nil {
		t.Error("JSONSchema of an unknown name must fail")
	}
}

// Every golden output validates against its schema.
func TestGoldenMatchesSchema(t *testing.T) {
	set := loadSchemaSet(t)
	files := map[string]string{
		"link.v1.json":                      LinkV1,
		"link.v1.attributes.json":           LinkV1 + ".attributes",
		"link_resumable.v1.json":            LinkV1,
		"link_resumable.v1.attributes.json": LinkV1 + ".attributes",
		"link_long_name.v1.attributes.json": LinkV1 + ".attributes",
		"link_metadata.v1.json":             LinkV1,
		"link_durable.v1.json":              LinkV1,
		"link_durable.v1.attributes.json":   LinkV1 + ".attributes",
		"job_done.v1.json":                  JobDoneV1,
		"deadletter.v1.json":                DeadLetterV1,
		"deadletter_policy.v1.json":         DeadLetterV1,
		"manifest.jsonl":                    ManifestRowV1,
		"manifest.errors.jsonl":             ManifestErrorRowV1,
	}
	for file, name := range files {
		b, err := os.ReadFile(filepath.Join("testdata", "golden", file))
		if err != nil {
			t.Fatal(err)
		}
		docs := [][]byte{b}
		if strings.HasSuffix(file, ".jsonl") {
			docs = nil
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				docs = append(docs, slices.Clone(sc.Bytes()))
			}
		}
		for i, d := range docs {
			for _, e := range set.validate(schemaID(name), mustDecode(t, d)) {
				t.Errorf("%s[%d] against %s: %s", file, i, name, e)
			}
		}
	}
}

// Every good corpus example validates against the schemas of its parts.
func TestGoodCorpusMatchesSchema(t *testing.T) {
	set := loadSchemaSet(t)
	for _, c := range loadCorpus(t, filepath.Join("testdata", "good")) {
		var checks []struct {
			name string
			inst any
		}
		add := func(name string, inst any) {
			checks = append(checks, struct {
				name string
				inst any
			}{name, inst})
		}
		switch {
		case strings.HasPrefix(c.File, "gcs_"):
			add(GCSNotificationV1+".attributes", attrsValue(c.Attributes))
			if len(c.Data) > 0 {
				add(GCSNotificationV1, mustDecode(t, c.Data))
			}
		case c.File == "cloudevent_structured.json":
			add(CloudEventStorageV1, mustDecode(t, c.Data))
		case strings.HasPrefix(c.File, "cloudevent_"):
			add(GCSNotificationV1, mustDecode(t, c.Data))
		case strings.HasPrefix(c.File, "job_"):
			add(JobV1, mustDecode(t, c.Data))
		default:
			t.Errorf("%s: no schema mapping for this example", c.File)
		}
		for _, ch := range checks {
			for _, e := range set.validate(schemaID(ch.name), ch.inst) {
				t.Errorf("%s against %s: %s", c.File, ch.name, e)
			}
		}
	}
}

// The checker really rejects: structural errors in bad corpus cases and
// hand-made outputs are caught by the schemas too.
func TestSchemaRejects(t *testing.T) {
	set := loadSchemaSet(t)
	corpus := map[string]*corpusCase{}
	for _, c := range loadCorpus(t, filepath.Join("testdata", "bad")) {
		corpus[c.File] = c
	}
	data := func(file string) any { return mustDecode(t, corpus[file].Data) }
	attrs := func(file string) any { return attrsValue(corpus[file].Attributes) }
	tests := []struct {
		name   string
		schema string
		inst   any
	}{
		{"job expiry as number", JobV1, data("job_expiry_number.json")},
		{"job with two sources", JobV1, data("job_both_sources.json")},
		{"job method PATCH", JobV1, data("job_bad_method.json")},
		{"job unknown field", JobV1, data("job_unknown_field.json")},
		{"job s3 manifest uri", JobV1, data("job_bad_manifest_uri.json")},
		{"job generation object", JobV1, data("job_generation_object.json")},
		{"job submitter with a line break", JobV1, data("job_submitter_control_char.json")},
		{"gcs generation object", GCSNotificationV1, data("gcs_generation_object.json")},
		{"gcs size boolean", GCSNotificationV1, data("gcs_size_bool.json")},
		{"gcs payload array", GCSNotificationV1, data("gcs_payload_array.json")},
		{"gcs unknown event type", GCSNotificationV1 + ".attributes", attrs("gcs_unknown_event_type.json")},
		{"gcs missing objectId", GCSNotificationV1 + ".attributes", attrs("gcs_missing_object_id.json")},
		{"gcs generation attr", GCSNotificationV1 + ".attributes", attrs("gcs_generation_attr_not_number.json")},
		{"link with url attribute", LinkV1 + ".attributes", map[string]any{"schema": LinkV1, "dedupe_key": "k", "bucket": "b", "generation": "1", "method": "GET", "url": "https://x"}},
		{"link with a metadata value over 1 KiB", LinkV1, mustDecode(t, []byte(`{"bucket":"bkt","object":"o","generation":1,"method":"GET","http_method":"GET","url":"https://x","expires_at":"x","issued_at":"x","size":1,"source":{"message_id":"1"},"metadata":{"k":"`+strings.Repeat("v", 1025)+`"}}`))},
		{"link with an empty event attribute key", LinkV1, mustDecode(t, []byte(`{"bucket":"bkt","object":"o","generation":1,"method":"GET","http_method":"GET","url":"https://x","expires_at":"x","issued_at":"x","size":1,"source":{"message_id":"1"},"event_attributes":{"":"v"}}`))},
		{"link with a durable link without its id", LinkV1, mustDecode(t, []byte(`{"bucket":"bkt","object":"o","generation":1,"method":"GET","http_method":"GET","url":"https://x","expires_at":"x","issued_at":"x","size":1,"source":{"message_id":"1"},"durable":{"url":"https://l.example.com/l/abc","expires_at":"x"}}`))},
		{"link with a durable link that is not /l/TOKEN", LinkV1, mustDecode(t, []byte(`{"bucket":"bkt","object":"o","generation":1,"method":"GET","http_method":"GET","url":"https://x","expires_at":"x","issued_at":"x","size":1,"source":{"message_id":"1"},"durable":{"url":"https://l.example.com/abc","id":"0123456789abcdef01234567","expires_at":"x"}}`))},
		{"link without source ids", LinkV1, mustDecode(t, []byte(`{"bucket":"bkt","object":"o","generation":1,"method":"GET","http_method":"GET","url":"https://x","expires_at":"x","issued_at":"x","size":1,"source":{"event_type":"OBJECT_FINALIZE"}}`))},
		{"dead letter bad code", DeadLetterV1, mustDecode(t, []byte(`{"original_message_id":"1","original_attributes":{},"original_data":"","original_size":0,"reason":"r","reason_code":"Bad Code","failed_at":"x","worker_id":"w"}`))},
		{"manifest row generation string", ManifestRowV1, mustDecode(t, []byte(`{"object":"o","generation":"1","size":1,"content_type":"","url":"https://x","expires_at":"x"}`))},
		{"job_done both outputs", JobDoneV1, mustDecode(t, []byte(`{"job_id":"j","manifest":{"uri":"gs://b/o","format":"csv","url":"https://x","url_expires_at":"x"},"results_topic":"projects/p/topics/t","counts":{"listed":0,"signed":0,"skipped":0,"failed":0},"shards":1,"started_at":"x","finished_at":"x","duration_ms":0}`))},
		{"structured event with both data forms", CloudEventStorageV1, mustDecode(t, []byte(`{"specversion":"1.0","id":"1","source":"//storage.googleapis.com/projects/_/buckets/b","type":"google.cloud.storage.object.v1.finalized","subject":"objects/o","time":"x","data":{"bucket":"b","name":"o","generation":"1"},"data_base64":"e30="}`))},
	}
	for _, tt := range tests {
		if errs := set.validate(schemaID(tt.schema), tt.inst); len(errs) == 0 {
			t.Errorf("%s: accepted by %s", tt.name, tt.schema)
		}
	}
}
