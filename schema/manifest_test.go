package schema

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	rows, errs := goldenRows()
	for _, format := range []ManifestFormat{FormatJSONL, FormatCSV} {
		t.Run(string(format), func(t *testing.T) {
			m, e := encodeRows(t, format, rows, errs)
			r, err := NewRowReader(bytes.NewReader(m), format, ManifestCSVHeader)
			if err != nil {
				t.Fatal(err)
			}
			for i := range rows {
				got, err := r.ReadRow()
				if err != nil {
					t.Fatalf("row %d: %v", i, err)
				}
				if *got != rows[i] {
					t.Errorf("row %d = %+v, want %+v", i, got, rows[i])
				}
			}
			if _, err := r.ReadRow(); err != io.EOF {
				t.Errorf("after the last row: %v, want io.EOF", err)
			}
			er, err := NewRowReader(bytes.NewReader(e), format, ErrorCSVHeader)
			if err != nil {
				t.Fatal(err)
			}
			for i := range errs {
				got, err := er.ReadError()
				if err != nil {
					t.Fatalf("error row %d: %v", i, err)
				}
				if *got != errs[i] {
					t.Errorf("error row %d = %+v, want %+v", i, got, errs[i])
				}
			}
			if _, err := er.ReadError(); err != io.EOF {
				t.Errorf("after the last error row: %v, want io.EOF", err)
			}
		})
	}
}

// Shards write parts; the finisher composes them by concatenation. Only the
// first part carries the CSV header, and the result reads as one manifest.
func TestManifestPartsCompose(t *testing.T) {
	rows, _ := goldenRows()
	for _, format := range []ManifestFormat{FormatJSONL, FormatCSV} {
		var composed bytes.Buffer
		for i := range rows {
			header := ManifestCSVHeader
			if i > 0 {
				header = nil
			}
			var part bytes.Buffer
			w, err := NewRowWriter(&part, format, header)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteRow(&rows[i]); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			composed.Write(part.Bytes())
		}
		whole, _ := encodeRows(t, format, rows, nil)
		if !bytes.Equal(composed.Bytes(), whole) {
			t.Errorf("%s: composed parts differ from a single write:\n%s\nvs\n%s", format, composed.Bytes(), whole)
		}
	}
}

func TestRowReaderErrors(t *testing.T) {
	tests := []struct {
		name   string
		format ManifestFormat
		header []string
		input  string
		field  string // of the FieldError from NewRowReader or the first ReadRow
	}{
		{name: "unknown format", format: "xml", header: ManifestCSVHeader, field: "format"},
		{name: "wrong header", format: FormatCSV, header: ManifestCSVHeader, input: "name,url\r\n", field: "header"},
		{name: "short record", format: FormatCSV, header: ManifestCSVHeader, input: strings.Join(ManifestCSVHeader, ",") + "\r\na,1\r\n", field: "row 1"},
		{name: "bad generation", format: FormatCSV, header: ManifestCSVHeader, input: strings.Join(ManifestCSVHeader, ",") + "\r\na,x,1,t,u,2024-01-01T00:00:00Z\r\n", field: "row 1 generation"},
		{name: "bad time", format: FormatCSV, header: ManifestCSVHeader, input: strings.Join(ManifestCSVHeader, ",") + "\r\na,1,1,t,u,tomorrow\r\n", field: "row 1 expires_at"},
		{name: "jsonl unknown field", format: FormatJSONL, input: `{"object":"a","bucket":"b"}` + "\n", field: "row 1.bucket"},
		{name: "jsonl wrong type", format: FormatJSONL, input: `{"object":"a","size":"big"}` + "\n", field: "row 1.size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRowReader(strings.NewReader(tt.input), tt.format, tt.header)
			if err == nil {
				_, err = r.ReadRow()
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want a FieldError on %q", err, tt.field)
			}
		})
	}
	if _, err := NewRowWriter(io.Discard, "xml", nil); CodeOf(err) != CodeInvalidField {
		t.Errorf("NewRowWriter(xml) = %v", err)
	}
}
