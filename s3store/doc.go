// Package s3store connects linkissuer to S3-compatible object stores: AWS
// S3, MinIO, Cloudflare R2, Storj's S3 gateway, localstack, and the GCS XML
// API in interoperability mode. It authenticates with an HMAC key (an S3
// access key, or a GCS HMAC key), read from a file or the environment,
// never from a command-line value.
//
// What it provides:
//   - Config.URLSigner: AWS4-HMAC-SHA256 presigned GET, HEAD, PUT and
//     DELETE URLs and POST policies (sign.URLSigner with the AWS4 dialect)
//     pointing at the store, path or virtual-hosted style;
//     NewPostRequest builds the form upload a browser would send.
//   - Client: a jobs.Source (ListObjectsV2, HeadObject) and a jobs.Store
//     (PutObject, multipart upload, GetObject, DeleteObject; Compose built
//     from UploadPartCopy and re-streamed parts), so that bulk jobs list S3
//     buckets and can keep manifests there.
//   - Backends: the jobs.BackendFunc for s3 job sources, limited to the
//     stores the worker is configured with.
//
// Endpoints and addressing (the zero Style picks the usual one):
//
//	store          Endpoint                                   Region      Style
//	AWS S3         "" (s3[.REGION].amazonaws.com)             bucket's    virtual
//	MinIO          http://HOST:9000                           us-east-1   path
//	localstack     http://localhost:4566                      us-east-1   path
//	Cloudflare R2  https://ACCOUNT.r2.cloudflarestorage.com   us-east-1   path
//	Storj gateway  https://gateway.storjshare.io              us-east-1   path
//	GCS XML API    https://storage.googleapis.com             us-east-1   path
//
// Guarantees: objects written through a Client appear whole or not at all
// (one PutObject, or a multipart upload completed at Close and aborted on
// failure); conditional writes use If-None-Match: * and report
// jobs.ErrExists; throttling, 5xx and network failures that outlive the
// SDK's retries are *sign.RetryableError, everything else is permanent.
// Listings are never held in memory beyond one page.
//
// Limits: S3 version IDs are opaque strings, not generations, so
// include_generations and pinned generations are refused. Compose costs a
// HEAD per source and re-streams sources under 5 MiB through the process.
package s3store
