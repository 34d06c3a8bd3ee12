package schema

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// Manifest row versions. They are not carried per row; the jobs package
// records them in the manifest object's metadata.
const (
	ManifestRowV1      = "linkissuer.manifest_row.v1"
	ManifestErrorRowV1 = "linkissuer.manifest_error.v1"
)

// ManifestRow is one signed link in a job manifest.
type ManifestRow struct {
	Object     string `json:"object"`
	Generation int64  `json:"generation"`
	// Size in bytes; -1 when the source did not say.
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type"`
	URL         string    `json:"url"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// ErrorRow is one object of a job that got no link, with why.
type ErrorRow struct {
	Object     string     `json:"object"`
	Generation int64      `json:"generation"`
	Reason     string     `json:"reason"`
	ReasonCode ReasonCode `json:"reason_code"`
}

// CSV headers: the first record of a CSV manifest or errors file. Columns are
// fixed and in this order; times are RFC 3339 in UTC to the second (signed
// URLs expire on whole seconds), numbers decimal.
var (
	ManifestCSVHeader = []string{"object", "generation", "size", "content_type", "url", "expires_at"}
	ErrorCSVHeader    = []string{"object", "generation", "reason", "reason_code"}
)

// CSVRecord encodes r as a CSV record in ManifestCSVHeader order.
func (r *ManifestRow) CSVRecord() []string {
	return []string{r.Object, strconv.FormatInt(r.Generation, 10), strconv.FormatInt(r.Size, 10),
		r.ContentType, r.URL, r.ExpiresAt.UTC().Format(time.RFC3339)}
}

// CSVRecord encodes r as a CSV record in ErrorCSVHeader order.
func (r *ErrorRow) CSVRecord() []string {
	return []string{r.Object, strconv.FormatInt(r.Generation, 10), r.Reason, string(r.ReasonCode)}
}

// RowWriter streams manifest or error rows in one format. JSONL writes one
// compact JSON object per line; CSV writes RFC 4180 records (encoding/csv,
// CRLF line ends) after an optional header. Object names are written as
// they are: a name starting with =, + or @ is not altered, so consumers that
// open CSV in a spreadsheet must not evaluate formulas.
//
// It buffers; call Flush at the end. It is not safe for concurrent use.
type RowWriter struct {
	format ManifestFormat
	bw     *bufio.Writer
	cw     *csv.Writer
	enc    *json.Encoder
}

// NewRowWriter returns a RowWriter to w. With header set, a CSV writer first
// writes header (ManifestCSVHeader or ErrorCSVHeader); parts that are later
// composed after the first are written without one.
func NewRowWriter(w io.Writer, format ManifestFormat, header []string) (*RowWriter, error) {
	rw := &RowWriter{format: format, bw: bufio.NewWriterSize(w, 64<<10)}
	switch format {
	case FormatJSONL:
		rw.enc = json.NewEncoder(rw.bw)
		rw.enc.SetEscapeHTML(false)
	case FormatCSV:
		rw.cw = csv.NewWriter(rw.bw)
		rw.cw.UseCRLF = true
		if header != nil {
			if err := rw.cw.Write(header); err != nil {
				return nil, fmt.Errorf("schema: write CSV header: %w", err)
			}
		}
	default:
		return nil, fieldErr(CodeInvalidField, "format", "%s is not %s", quoteShort(string(format)), formatChoices())
	}
	return rw, nil
}

// WriteRow writes one manifest row.
func (w *RowWriter) WriteRow(r *ManifestRow) error {
	if w.cw != nil {
		return w.writeCSV(r.CSVRecord())
	}
	out := *r
	out.ExpiresAt = out.ExpiresAt.UTC()
	return w.writeJSON(&out)
}

// WriteError writes one error row.
func (w *RowWriter) WriteError(r *ErrorRow) error {
	if w.cw != nil {
		return w.writeCSV(r.CSVRecord())
	}
	return w.writeJSON(r)
}

func (w *RowWriter) writeCSV(rec []string) error {
	if err := w.cw.Write(rec); err != nil {
		return fmt.Errorf("schema: write CSV row: %w", err)
	}
	return nil
}

func (w *RowWriter) writeJSON(v any) error {
	if err := w.enc.Encode(v); err != nil {
		return fmt.Errorf("schema: write JSONL row: %w", err)
	}
	return nil
}

// Flush writes buffered rows to the underlying writer.
func (w *RowWriter) Flush() error {
	if w.cw != nil {
		w.cw.Flush()
		if err := w.cw.Error(); err != nil {
			return fmt.Errorf("schema: flush CSV: %w", err)
		}
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("schema: flush rows: %w", err)
	}
	return nil
}

// RowReader reads back what a RowWriter wrote; the jobs package and tests
// use it to verify manifests row by row.
type RowReader struct {
	cr     *csv.Reader
	dec    *json.Decoder
	header []string
	line   int
}

// NewRowReader reads rows in format from r. For CSV, the first record must
// equal header.
func NewRowReader(r io.Reader, format ManifestFormat, header []string) (*RowReader, error) {
	rr := &RowReader{header: header}
	switch format {
	case FormatJSONL:
		rr.dec = json.NewDecoder(bufio.NewReader(r))
		rr.dec.DisallowUnknownFields()
	case FormatCSV:
		rr.cr = csv.NewReader(bufio.NewReader(r))
		rr.cr.FieldsPerRecord = -1 // the header is compared below, whatever its length
		rr.cr.ReuseRecord = true
		got, err := rr.cr.Read()
		if err != nil {
			return nil, &FieldError{Field: "header", Reason: "cannot read the CSV header: " + err.Error(), Code: CodeInvalidField, Err: err}
		}
		if !slices.Equal(got, header) {
			return nil, fieldErr(CodeInvalidField, "header", "CSV header %q, want %q", got, header)
		}
		rr.cr.FieldsPerRecord = len(header)
	default:
		return nil, fieldErr(CodeInvalidField, "format", "%s is not %s", quoteShort(string(format)), formatChoices())
	}
	return rr, nil
}

// ReadRow reads the next manifest row; it returns io.EOF at the end.
func (r *RowReader) ReadRow() (*ManifestRow, error) {
	var row ManifestRow
	rec, gen, err := r.next(&row)
	if err != nil {
		return nil, err
	}
	if rec == nil { // JSON Lines: decoded whole
		return &row, nil
	}
	row.Generation = gen
	if row.Size, err = r.int(rec[2], "size"); err != nil {
		return nil, err
	}
	if row.ExpiresAt, err = time.Parse(time.RFC3339, rec[5]); err != nil {
		return nil, fieldErr(CodeInvalidField, fmt.Sprintf("row %d expires_at", r.line), "not RFC 3339: %s", quoteShort(rec[5]))
	}
	row.Object, row.ContentType, row.URL = rec[0], rec[3], rec[4]
	return &row, nil
}

// ReadError reads the next error row; it returns io.EOF at the end.
func (r *RowReader) ReadError() (*ErrorRow, error) {
	var row ErrorRow
	rec, gen, err := r.next(&row)
	if err != nil {
		return nil, err
	}
	if rec == nil { // JSON Lines: decoded whole
		return &row, nil
	}
	row.Generation = gen
	row.Object, row.Reason, row.ReasonCode = rec[0], rec[2], ReasonCode(rec[3])
	return &row, nil
}

// next reads the next row: a JSON Lines row straight into v (rec is then
// nil), or a CSV record whose generation column (the second, in both row
// kinds) it parses.
func (r *RowReader) next(v any) (rec []string, generation int64, err error) {
	r.line++
	if r.dec != nil {
		return nil, 0, r.readJSON(v)
	}
	if rec, err = r.cr.Read(); err != nil {
		return nil, 0, r.csvErr(err)
	}
	if generation, err = r.int(rec[1], "generation"); err != nil {
		return nil, 0, err
	}
	return rec, generation, nil
}

func (r *RowReader) readJSON(v any) error {
	if err := r.dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return jsonErr(fmt.Sprintf("row %d", r.line), err)
	}
	return nil
}

func (r *RowReader) csvErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	return &FieldError{Field: fmt.Sprintf("row %d", r.line), Reason: err.Error(), Code: CodeInvalidField, Err: err}
}

func (r *RowReader) int(s, field string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fieldErr(CodeInvalidField, fmt.Sprintf("row %d %s", r.line, field), "not an integer: %s", quoteShort(s))
	}
	return n, nil
}
