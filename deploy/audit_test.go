package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/linkissuer/linkissuer/schema"
)

// bqColumn is a BigQuery column as the table schema declares it.
type bqColumn struct {
	Type   string
	Mode   string
	Fields map[string]bqColumn // of a RECORD
}

func (c bqColumn) String() string {
	if c.Fields == nil {
		return c.Type + " " + c.Mode
	}
	var fields []string
	for _, name := range slices.Sorted(maps.Keys(c.Fields)) {
		fields = append(fields, name+" "+c.Fields[name].String())
	}
	return fmt.Sprintf("%s %s {%s}", c.Type, c.Mode, strings.Join(fields, ", "))
}

// writeMetadataColumns are the columns a BigQuery subscription with
// write_metadata fills besides the message's fields.
var writeMetadataColumns = map[string]bqColumn{
	"subscription_name": {Type: "STRING", Mode: "NULLABLE"},
	"message_id":        {Type: "STRING", Mode: "NULLABLE"},
	"publish_time":      {Type: "TIMESTAMP", Mode: "NULLABLE"},
	"attributes":        {Type: "STRING", Mode: "NULLABLE"},
}

// TestAuditTableMatchesSchema: the BigQuery table the audit subscription
// writes (local.audit_columns in audit.tf) has one column per property of
// linkissuer.audit.v1's JSON Schema, of the type and mode the property
// maps to, plus write_metadata's columns, and nothing else: a field added
// to the JSON Schema and not to the table (the subscription would fail to
// write records, use_table_schema) or to the table and not the JSON
// Schema fails here. (schema's TestAuditRecordFieldsMatchSchema holds the
// Go record to the same JSON Schema.)
func TestAuditTableMatchesSchema(t *testing.T) {
	m := loadModule(t, moduleDir)
	table := m.resource(t, "google_bigquery_table.audit")
	if !refersTo(attr(t, table, "schema"), "local.audit_columns") {
		t.Fatalf("the audit table's schema is %s, not local.audit_columns", exprText(attr(t, table, "schema")))
	}
	sub := m.resource(t, "google_pubsub_subscription.audit_bigquery")
	bq := path(t, sub, "bigquery_config")
	for _, a := range []string{"use_table_schema", "write_metadata"} {
		if !eval(t, nil, attr(t, bq, a)).True() {
			t.Errorf("bigquery_config.%s is not true: the table's columns would not be the record's fields and the metadata", a)
		}
	}
	got := auditColumns(t, m)

	raw, err := schema.JSONSchema(schema.AuditV1)
	if err != nil {
		t.Fatal(err)
	}
	var sch map[string]any
	if err := json.Unmarshal(raw, &sch); err != nil {
		t.Fatal(err)
	}
	want := schemaColumns(t, schema.AuditV1, sch)
	for name, c := range writeMetadataColumns {
		if _, dup := want[name]; dup {
			t.Errorf("the record's field %q is also a write_metadata column", name)
		}
		want[name] = c
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("column %s (%s) is missing from local.audit_columns", name, want[name])
		case g.String() != want[name].String():
			t.Errorf("column %s is %s, want %s (from the JSON Schema)", name, g, want[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			t.Errorf("column %s (%s) is not a property of %s.json nor a write_metadata column", name, got[name], schema.AuditV1)
		}
	}
	for _, name := range append(stringsOf(t, eval(t, nil, attr(t, table, "clustering"))),
		mustString(t, attr(t, path(t, table, "time_partitioning"), "field"))) {
		if _, ok := got[name]; !ok {
			t.Errorf("the table is clustered or partitioned by %s, which is not a column", name)
		}
	}
}

// tableColumns reads a BigQuery schema: a list of {name, type, mode,
// fields}.
func tableColumns(t *testing.T, v cty.Value) map[string]bqColumn {
	t.Helper()
	out := map[string]bqColumn{}
	for _, col := range v.AsValueSlice() {
		attrs := col.AsValueMap()
		name := attrs["name"].AsString()
		if _, dup := out[name]; dup {
			t.Errorf("column %s declared twice", name)
		}
		c := bqColumn{Type: attrs["type"].AsString(), Mode: "NULLABLE"}
		if mode, ok := attrs["mode"]; ok {
			c.Mode = mode.AsString()
		}
		if fields, ok := attrs["fields"]; ok {
			c.Fields = tableColumns(t, fields)
		}
		out[name] = c
	}
	return out
}

// schemaColumns maps an object JSON Schema's properties to the columns
// BigQuery needs to take them: required properties are REQUIRED, others
// NULLABLE, arrays REPEATED; strings STRING (TIMESTAMP with format
// date-time), enums of strings STRING, integers INTEGER, objects RECORD.
func schemaColumns(t *testing.T, where string, obj map[string]any) map[string]bqColumn {
	t.Helper()
	props, _ := obj["properties"].(map[string]any)
	if len(props) == 0 {
		t.Fatalf("%s: no properties", where)
	}
	required := map[string]bool{}
	for _, r := range anyList(obj["required"]) {
		required[r.(string)] = true
	}
	out := map[string]bqColumn{}
	for name, p := range props {
		prop := p.(map[string]any)
		mode := "NULLABLE"
		if required[name] {
			mode = "REQUIRED"
		}
		if prop["type"] == "array" {
			mode = "REPEATED"
			prop, _ = prop["items"].(map[string]any)
		}
		c := bqColumn{Mode: mode}
		switch {
		case prop["type"] == "string" && prop["format"] == "date-time":
			c.Type = "TIMESTAMP"
		case prop["type"] == "string":
			c.Type = "STRING"
		case prop["type"] == "integer":
			c.Type = "INTEGER"
		case prop["type"] == "boolean":
			c.Type = "BOOLEAN"
		case prop["type"] == "object":
			c.Type, c.Fields = "RECORD", schemaColumns(t, where+"."+name, prop)
		case prop["type"] == nil && prop["enum"] != nil && !slices.ContainsFunc(anyList(prop["enum"]), func(v any) bool { _, ok := v.(string); return !ok }):
			c.Type = "STRING"
		default:
			t.Errorf("%s.%s: no BigQuery type for %v", where, name, prop)
			continue
		}
		out[name] = c
	}
	return out
}

func anyList(v any) []any { l, _ := v.([]any); return l }

// auditColumns returns the audit table's columns as m's audit.tf declares
// them.
func auditColumns(t *testing.T, m *tfModule) map[string]bqColumn {
	t.Helper()
	return tableColumns(t, eval(t, m.evalContext(t, nil), m.locals["audit_columns"]))
}

// auditSection returns the top-level README's audit section.
func auditSection(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Audit trail:")
	if !ok {
		t.Fatal("README has no \"## Audit trail:\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

var (
	sqlBlock   = regexp.MustCompile("(?s)```sql\n(.*?)```")
	sqlQuoted  = regexp.MustCompile("`[^`]*`|'[^']*'|--[^\n]*")
	sqlWord    = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	tableField = regexp.MustCompile("`([a-z_]+)`")
)

// TestAuditQueriesNameColumns: the "who got a link to X since T" queries
// (the README's audit section and audit.tf's header) name only columns of
// the audit table, so they run as written.
func TestAuditQueriesNameColumns(t *testing.T) {
	cols := auditColumns(t, loadModule(t, moduleDir))
	queries := map[string]string{}
	for i, m := range sqlBlock.FindAllStringSubmatch(auditSection(t), -1) {
		queries[fmt.Sprintf("README query %d", i+1)] = m[1]
	}
	tf, err := os.ReadFile(repoPath(moduleDir + "/audit.tf"))
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	for line := range strings.Lines(string(tf)) {
		if q, ok := strings.CutPrefix(line, "#   "); ok {
			header = append(header, q)
		}
	}
	queries["audit.tf's header"] = strings.Join(header, "")
	for where, q := range queries {
		if !strings.Contains(q, "SELECT") || !strings.Contains(q, "WHERE") {
			t.Errorf("%s is not a query: %q", where, q)
			continue
		}
		for _, w := range sqlWord.FindAllString(sqlQuoted.ReplaceAllString(q, " "), -1) {
			if w == strings.ToUpper(w) {
				continue // a keyword
			}
			if _, ok := cols[w]; !ok {
				t.Errorf("%s names %s, which is not a column of the audit table", where, w)
			}
		}
	}
}

// TestAuditFieldsDocumented: the README's table of what a record holds
// (after <!-- audit:fields -->) names every property of the JSON Schema,
// and nothing else.
func TestAuditFieldsDocumented(t *testing.T) {
	_, table, ok := strings.Cut(auditSection(t), "<!-- audit:fields -->")
	if !ok {
		t.Fatal("the README's audit section has no <!-- audit:fields --> table")
	}
	documented := map[string]bool{}
	for line := range strings.Lines(strings.TrimLeft(table, "\n")) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		first := strings.Split(line, "|")[1]
		for _, m := range tableField.FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	raw, err := schema.JSONSchema(schema.AuditV1)
	if err != nil {
		t.Fatal(err)
	}
	var sch struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(raw, &sch); err != nil {
		t.Fatal(err)
	}
	for name := range sch.Properties {
		if !documented[name] {
			t.Errorf("field %s is not in the README's table of what a record holds", name)
		}
	}
	for name := range documented {
		if _, ok := sch.Properties[name]; !ok {
			t.Errorf("the README's table names %s, which is not a field of %s", name, schema.AuditV1)
		}
	}
}
