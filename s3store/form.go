package s3store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sort"

	"github.com/linkissuer/linkissuer/sign"
)

// NewPostRequest builds the multipart/form-data POST a browser sends for a
// signed POST policy (sign.URLSigner.SignPostPolicy): every form field, in
// name order, then the file field last, as S3 requires (fields after the
// file are ignored). The body is buffered, so keep it to small uploads; a
// browser streams its own.
func NewPostRequest(ctx context.Context, form *sign.PostForm, filename string, content io.Reader) (*http.Request, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	names := make([]string, 0, len(form.Fields))
	for name := range form.Fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := mw.WriteField(name, form.Fields[name]); err != nil {
			return nil, err
		}
	}
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(fw, content); err != nil {
		return nil, fmt.Errorf("s3store: reading the upload: %w", err)
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, form.URL, &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req, nil
}
