package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/minio"
	"github.com/linkissuer/linkissuer/s3store"
)

// infraInfo is what the infra process prints once it is serving.
type infraInfo struct {
	Storage     string `json:"storage"`
	IAMEndpoint string `json:"iam_endpoint,omitempty"`
	Email       string `json:"email,omitempty"`
	// S3 is MinIO's endpoint, access key and secret, space-separated.
	S3 string `json:"s3,omitempty"`
}

// runInfra serves fake-gcs-server (buckets media, exports and
// loadtest-fleet, the fleet rows' prefixes) and, with a key file, the IAM
// Credentials emulator, until stdin closes. It runs in a process of its
// own so that the stand-ins' memory and CPU are not counted as the
// measured process's: the manifest lives in fake-gcs-server's memory.
func runInfra(c config) error {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		return err
	}
	defer srv.Stop()
	srv.CreateBucket("media")
	srv.CreateBucket("exports")
	srv.CreateBucket(fleetBucket)
	info := infraInfo{Storage: srv.URL()}
	if c.manifest == "minio" {
		m, err := minio.Start(context.Background(), nil)
		if err != nil {
			return err
		}
		defer m.Stop()
		cl, err := s3store.NewClient(s3store.Config{Endpoint: m.Endpoint, Region: "us-east-1", Key: s3store.HMACKey{AccessID: m.AccessKey, Secret: m.SecretKey}}, nil)
		if err != nil {
			return err
		}
		if _, err := cl.SDK().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("exports")}); err != nil {
			return err
		}
		info.S3 = strings.Join([]string{m.Endpoint, m.AccessKey, m.SecretKey}, " ")
	}
	if c.iamKeyFile != "" {
		data, err := os.ReadFile(c.iamKeyFile)
		if err != nil {
			return err
		}
		block, _ := pem.Decode(data)
		if block == nil {
			return fmt.Errorf("%s: no PEM block", c.iamKeyFile)
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return err
		}
		iam, err := emulator.Start("127.0.0.1:0", &emulator.Options{
			Key: key, Latency: c.latency, Jitter: c.jitter, Quota: c.quota, Seed: 1,
			Burst: int(c.quota * c.burst.Seconds()), // 0: the emulator's default, one second
		})
		if err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			iam.Close(ctx)
		}()
		info.IAMEndpoint, info.Email = iam.Endpoint(), iam.Email()
	}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, os.Stdin) // until the driver closes our stdin
	return err
}
