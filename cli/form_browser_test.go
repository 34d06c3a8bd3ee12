package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"

	"github.com/linkissuer/linkissuer/internal/minio"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/sign"
)

// requireChromiumEnv, when set (.ci/run sets it), makes the browser test
// fail instead of skip where Chromium is missing.
const requireChromiumEnv = "LINKISSUER_REQUIRE_CHROMIUM"

// findChromium returns the Chromium binary, or skips (fails in CI).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "browser test skipped: no chromium on $PATH (Debian: apt-get install chromium)"
	if os.Getenv(requireChromiumEnv) != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startBrowser starts one headless Chromium for the test, with a fresh
// profile and nothing that reaches for the network on its own.
func startBrowser(t *testing.T, bin string) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first action on the browser's own context launches it, and ties
	// the browser's life to that context: no timeout context here.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("chromium did not start: %v", err)
	}
	return browser
}

// TestFormInBrowser posts the page `form --output html` prints from a real
// headless Chromium to a real MinIO: the browser picks the file, the page
// fills in the content type, MinIO checks the policy. One upload within the
// policy arrives with its bytes and content type; one too large and one
// under a key outside the allowed prefix are refused and store nothing.
func TestFormInBrowser(t *testing.T) {
	bin := findChromium(t)
	srv, client := startMinIOBucket(t, "browser-uploads")
	const bucket = "browser-uploads"

	code, page, errOut := runCmd(t, Form, "", map[string]string{"LINKISSUER_HMAC_SECRET": srv.SecretKey},
		"--hmac-access-id", srv.AccessKey, "--endpoint", srv.Endpoint, "--region", srv.Region,
		"--max-size", "1KiB", "--min-size", "1", "--key-starts-with", "uploads/", "--content-type-prefix", "text/",
		"--success-status", "201", "--meta", "source=browser-test", "--duration", "10m", "--output", "html",
		"s3://"+bucket+"/")
	if code != ExitOK {
		t.Fatalf("form: exit %d: %s", code, errOut)
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	t.Cleanup(site.Close)

	dir := t.TempDir()
	writeFile := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small := []byte("hello from a browser form\n")
	browser := startBrowser(t, bin)

	for _, tc := range []struct {
		name     string
		file     string
		data     []byte
		key      string // typed into the key box; "" keeps uploads/${filename}
		stored   string // the key the upload lands under
		wantText string // in MinIO's answer, as the browser shows it
		wantOK   bool
	}{
		{name: "upload within the policy", file: "note.txt", data: small, stored: "uploads/note.txt", wantText: "uploads/note.txt", wantOK: true},
		{name: "file over the size limit", file: "big.txt", data: bytes.Repeat([]byte("x"), 2048), stored: "uploads/big.txt", wantText: "EntityTooLarge"},
		{name: "key outside the allowed prefix", file: "escape.txt", data: small, key: "elsewhere/escape.txt", stored: "elsewhere/escape.txt", wantText: "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, closeTab := chromedp.NewContext(browser)
			defer closeTab()
			ctx, cancel := context.WithTimeout(tab, time.Minute)
			defer cancel()
			path := writeFile(tc.file, tc.data)
			steps := []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(site.URL),
				chromedp.WaitVisible(chromedp.CSS(`#file`)),
				chromedp.SetUploadFiles(chromedp.CSS(`#file`), []string{path}),
			}
			if tc.key != "" {
				steps = append(steps, chromedp.SetValue(chromedp.CSS(`input[name="key"]`), tc.key))
			}
			steps = append(steps, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
			if err := chromedp.Do(ctx, steps...); err != nil {
				t.Fatalf("browser: %v", err)
			}
			// The browser navigates to MinIO's answer to the POST; evaluations
			// made during the navigation fail and are tried again.
			answer, err := waitForPage(ctx, srv.Endpoint)
			if err != nil {
				t.Fatalf("waiting for MinIO's answer: %v", err)
			}
			if !strings.Contains(answer, tc.wantText) {
				t.Errorf("MinIO answered %q, want it to say %q", answer, tc.wantText)
			}
			info, err := client.Stat(t.Context(), bucket, tc.stored, 0)
			if !tc.wantOK {
				if !errors.Is(err, jobs.ErrNotFound) {
					t.Errorf("refused upload: Stat(%s) = %+v, %v; want not found", tc.stored, info, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the upload did not arrive: %v", err)
			}
			if info.ContentType != "text/plain" {
				t.Errorf("content type %q, want text/plain (filled in by the page from the file)", info.ContentType)
			}
			r, err := client.NewReader(t.Context(), bucket, tc.stored)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Errorf("stored %q, uploaded %q", got, tc.data)
			}
		})
	}
}

// startMinIOBucket starts MinIO for one test (skipping where it is not
// installed, failing in CI) and creates bucket.
func startMinIOBucket(t *testing.T, bucket string) (*minio.Server, *s3store.Client) {
	t.Helper()
	srv, err := minio.Start(t.Context(), nil)
	if err != nil {
		if errors.Is(err, minio.ErrNotInstalled) && os.Getenv(minio.RequireEnv) == "" {
			t.Skipf("MinIO integration test skipped: %v", err)
		}
		t.Fatalf("MinIO did not start: %v", err)
	}
	t.Cleanup(srv.Stop)
	client, err := s3store.NewClient(s3store.Config{
		Endpoint: srv.Endpoint, Region: srv.Region,
		Key: s3store.HMACKey{AccessID: srv.AccessKey, Secret: srv.SecretKey},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CreateBucket(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	return srv, client
}

// TestFormJSONPostedToMinIO posts the JSON form the way a program would
// (s3store.NewPostRequest), without a browser: MinIO accepts the upload
// with its metadata, and refuses it once the policy's size limit is passed.
func TestFormJSONPostedToMinIO(t *testing.T) {
	srv, client := startMinIOBucket(t, "json-uploads")
	got := runForm(t, map[string]string{"LINKISSUER_HMAC_SECRET": srv.SecretKey},
		"--hmac-access-id", srv.AccessKey, "--endpoint", srv.Endpoint, "--region", srv.Region,
		"--max-size", "100", "--content-type", "application/json", "--meta", "owner=ada", "--success-status", "201",
		"s3://json-uploads/in/data.json")
	form := &sign.PostForm{URL: got.URL, Fields: got.Fields}
	post := func(body []byte) int {
		req, err := s3store.NewPostRequest(t.Context(), form, "data.json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(bytes.Repeat([]byte("x"), 101)); code != http.StatusBadRequest {
		t.Errorf("101 bytes over a 100-byte limit: status %d, want 400", code)
	}
	if _, err := client.Stat(t.Context(), "json-uploads", "in/data.json", 0); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("the refused upload was stored: %v", err)
	}
	body := []byte(`{"hello":"form"}`)
	if code := post(body); code != http.StatusCreated {
		t.Fatalf("upload within the policy: status %d, want 201", code)
	}
	info, err := client.Stat(t.Context(), "json-uploads", "in/data.json", 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(body)) || info.ContentType != "application/json" {
		t.Errorf("stored %d bytes of %q, want %d of application/json", info.Size, info.ContentType, len(body))
	}
	head, err := client.SDK().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("json-uploads"), Key: aws.String("in/data.json")})
	if err != nil {
		t.Fatal(err)
	}
	if head.Metadata["owner"] != "ada" {
		t.Errorf("metadata %v, want owner=ada", head.Metadata)
	}
}

// waitForPage waits until the tab shows a loaded page from origin, and
// returns its text.
func waitForPage(ctx context.Context, origin string) (string, error) {
	check := chromedp.Evaluate[string](`(location.origin === ` + jsString(origin) + ` && document.readyState === "complete") ? document.documentElement.textContent : ""`)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		text, err := chromedp.Run(ctx, check)
		if err == nil && text != "" {
			return text, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (last evaluation: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
