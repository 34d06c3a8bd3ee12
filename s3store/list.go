package s3store

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/linkissuer/linkissuer/jobs"
)

// List implements jobs.Lister with ListObjectsV2, one page (up to 1,000
// keys, see ClientOptions.ListPageSize) at a time as the caller iterates,
// in the caller's goroutine.
//
// S3 lists in ascending UTF-8 byte order, as the contract requires.
// StartOffset is inclusive but S3's StartAfter is exclusive, so the listing
// starts after StartOffset minus its last character and drops the names in
// between; it stops at the first name >= EndOffset. Keys are requested
// URL-encoded (XML 1.0 cannot carry every byte a key may hold) and decoded
// when the store says it encoded them. MatchGlob and NamesOnly are ignored
// (the caller filters). Versions is refused: S3 version IDs are not
// generations.
func (c *Client) List(ctx context.Context, q jobs.ListQuery) iter.Seq2[jobs.ObjectInfo, error] {
	return func(yield func(jobs.ObjectInfo, error) bool) {
		if q.Versions {
			yield(jobs.ObjectInfo{}, errNoGenerations)
			return
		}
		in := &s3.ListObjectsV2Input{
			Bucket:       aws.String(q.Bucket),
			EncodingType: types.EncodingTypeUrl,
			MaxKeys:      aws.Int32(c.pageSize),
		}
		if q.Prefix != "" {
			in.Prefix = aws.String(q.Prefix)
		}
		if q.StartOffset != "" {
			in.StartAfter = aws.String(before(q.StartOffset))
		}
		pages := s3.NewListObjectsV2Paginator(c.s3, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(jobs.ObjectInfo{}, wrap("list", q.Bucket, q.Prefix, err))
				return
			}
			decode := page.EncodingType == types.EncodingTypeUrl
			for _, o := range page.Contents {
				name := aws.ToString(o.Key)
				if decode {
					if name, err = url.QueryUnescape(name); err != nil {
						yield(jobs.ObjectInfo{}, fmt.Errorf("s3store: list s3://%s: undecodable key %q: %w", q.Bucket, aws.ToString(o.Key), err))
						return
					}
				}
				if name < q.StartOffset {
					continue
				}
				if q.EndOffset != "" && name >= q.EndOffset {
					return
				}
				info := jobs.ObjectInfo{Name: name, Size: aws.ToInt64(o.Size)}
				if o.Size == nil {
					info.Size = -1
				}
				if o.LastModified != nil {
					info.Updated = *o.LastModified
				}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

// before returns s without its last character: a proper prefix, so it
// sorts before s, and still valid UTF-8 (the exact predecessor of a string
// has no finite form).
func before(s string) string {
	_, n := utf8.DecodeLastRuneInString(s)
	return s[:len(s)-n]
}
