package cli

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

const formUsage = `Usage: linkissuer form [flags] gs://BUCKET/KEY|s3://BUCKET/KEY

Signs a V4 POST policy: an HTML form that lets a browser upload one object
straight to the bucket, within the policy's conditions (size, key, content
type, metadata, expiry). Prints the form's action URL and fields as JSON, or,
with --output html, a ready upload page.

With --key-starts-with PREFIX the uploader may choose any key under PREFIX;
KEY is then only the form's initial key: PREFIX${filename} for gs://BUCKET/,
KEY${filename} for a KEY ending in "/"; the store replaces ${filename} with
the uploaded file's name.

Examples:
  linkissuer form --key-file key.json --max-size 10MiB --content-type-prefix image/ \
    --key-starts-with uploads/ --output html gs://media/ > upload.html
  LINKISSUER_HMAC_SECRET=... linkissuer form --hmac-access-id minioadmin \
    --endpoint http://127.0.0.1:9000 --region us-east-1 --max-size 1MB s3://photos/cat.jpg`

// formFlags is the parsed command line of `linkissuer form`.
type formFlags struct {
	cred credFlags
	url  urlFlags

	duration          string
	at                string
	minSize           string
	maxSize           string
	contentType       string
	contentTypePrefix string
	keyStartsWith     string
	successStatus     string
	redirect          string
	meta              stringList
	fields            stringList
	startsWith        stringList
	output            string
}

// Form implements `linkissuer form`.
func Form(ctx context.Context, env Env, args []string) int {
	var f formFlags
	fs := newFlagSet(env, "form", formUsage)
	f.cred.register(fs, env)
	f.url.register(fs, env)
	fs.StringVar(&f.duration, "duration", envString(env, "LINKISSUER_DURATION", "1h"), "how long the form may be posted: Go duration or N with s, m, h, d (max 7d; 12h keyless) [$LINKISSUER_DURATION]")
	fs.StringVar(&f.at, "at", "", "signing time, RFC 3339 (default now)")
	fs.StringVar(&f.maxSize, "max-size", "", "largest upload: bytes, or N with KB, MB, GB (1000s) or KiB, MiB, GiB (1024s); sets content-length-range")
	fs.StringVar(&f.minSize, "min-size", "", "smallest upload (default 0 with --max-size); sets content-length-range")
	fs.StringVar(&f.contentType, "content-type", "", "the upload's exact Content-Type")
	fs.StringVar(&f.contentTypePrefix, "content-type-prefix", "", "the upload's Content-Type must start with this, e.g. image/ (the page fills it from the chosen file)")
	fs.StringVar(&f.keyStartsWith, "key-starts-with", "", "let the uploader choose any key starting with this prefix (KEY defaults to PREFIX${filename})")
	fs.StringVar(&f.successStatus, "success-status", "", "status the store answers a successful upload with: 200, 201 (with an XML body) or 204 (the default)")
	fs.StringVar(&f.redirect, "redirect", "", "http(s) URL the browser is sent to after a successful upload (success_action_redirect)")
	fs.Var(&f.meta, "meta", "custom metadata name=value, stored as x-goog-meta-NAME or x-amz-meta-NAME (repeatable)")
	fs.Var(&f.fields, "field", "other exact form field name=value, e.g. cache-control=no-cache or acl=private (repeatable)")
	fs.Var(&f.startsWith, "starts-with", "field name=prefix: any value starting with prefix is allowed, the page shows it as a text box (repeatable)")
	fs.StringVar(&f.output, "output", "json", "json (url, fields, expires_at, policy) or html (an upload page)")
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return ExitUsage
	}
	form, err := f.sign(ctx, env, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer form: %v\n", err)
		if sign.IsInputError(err) || isUsage(err) {
			return ExitUsage
		}
		return ExitFailure
	}
	if err := form.write(env.Stdout, f.output); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer form: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// usageError is a command-line mistake (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// signedForm is a signed POST policy ready to print.
type signedForm struct {
	resource string
	form     *sign.PostForm
	// fields are the form's fields as the page posts them: the signed ones
	// and the starts-with ones with their prefix as the initial value.
	fields map[string]string
	// editable are the fields the page shows as text boxes (the starts-with
	// conditions); the rest are hidden.
	editable map[string]bool
	// typeField is the content-type field the page fills from the chosen
	// file, when its value is only constrained by a prefix.
	typeField string
	// accept is the file input's accept attribute.
	accept  string
	maxSize int64
}

// formField names per dialect: S3 spells the content type and metadata
// fields its own way.
func typeFieldName(d sign.Dialect) string {
	if d == sign.AWS4 {
		return "Content-Type"
	}
	return "content-type"
}

func metaPrefix(d sign.Dialect) string {
	if d == sign.AWS4 {
		return "x-amz-meta-"
	}
	return "x-goog-meta-"
}

// fieldName is what a form field or metadata name may be.
var fieldName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// reservedField reports whether name is a field the signature sets, which
// --field, --meta and --starts-with may not set.
func reservedField(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "key", "bucket", "policy", "file", "content-type", "success_action_status", "success_action_redirect":
		return true
	}
	for _, p := range []string{"x-goog-", "x-amz-"} {
		switch strings.TrimPrefix(n, p) {
		case "algorithm", "credential", "date", "signature":
			if strings.HasPrefix(n, p) {
				return true
			}
		}
	}
	return false
}

// sign builds the policy for target from the flags and signs it.
func (f *formFlags) sign(ctx context.Context, env Env, target string) (*signedForm, error) {
	switch f.output {
	case "json", "html":
	default:
		return nil, usagef("--output %q: must be json or html", f.output)
	}
	d, bucket, object, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	p := sign.PostPolicy{Bucket: bucket, Object: object, KeyStartsWith: f.keyStartsWith, Fields: map[string]string{}}
	out := &signedForm{resource: sign.Resource(d, bucket, ""), editable: map[string]bool{}, fields: map[string]string{}}
	if f.keyStartsWith != "" {
		out.editable["key"] = true
		switch {
		case p.Object == "":
			p.Object = f.keyStartsWith + "${filename}"
		case strings.HasSuffix(p.Object, "/"):
			p.Object += "${filename}"
		}
	} else if p.Object == "" || strings.HasSuffix(p.Object, "/") {
		return nil, usagef("%s names no object: give gs://BUCKET/KEY, or --key-starts-with PREFIX to let the uploader choose the key", target)
	}
	if p.Expires, err = ParseDuration(f.duration); err != nil {
		return nil, usagef("--duration: %v", err)
	}
	p.Time = time.Now().UTC().Truncate(time.Second)
	if f.at != "" {
		if p.Time, err = time.Parse(time.RFC3339, f.at); err != nil {
			return nil, usagef("--at %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", f.at)
		}
	}

	if f.maxSize != "" || f.minSize != "" {
		if f.maxSize == "" {
			return nil, usagef("--min-size needs --max-size")
		}
		minSize, err := parseSize("--min-size", f.minSize)
		if err != nil {
			return nil, err
		}
		if out.maxSize, err = parseSize("--max-size", f.maxSize); err != nil {
			return nil, err
		}
		if minSize > out.maxSize {
			return nil, usagef("--min-size %s is above --max-size %s", f.minSize, f.maxSize)
		}
		p.Conditions = append(p.Conditions, sign.ContentLengthRange(minSize, out.maxSize))
	}

	typeField := typeFieldName(d)
	switch {
	case f.contentType != "" && f.contentTypePrefix != "":
		return nil, usagef("give --content-type or --content-type-prefix, not both")
	case f.contentType != "":
		p.Fields[typeField] = f.contentType
		out.accept = f.contentType
	case f.contentTypePrefix != "":
		p.Conditions = append(p.Conditions, sign.StartsWith("$"+typeField, f.contentTypePrefix))
		out.fields[typeField] = f.contentTypePrefix
		out.typeField = typeField
		out.accept = acceptFor(f.contentTypePrefix)
	}

	switch f.successStatus {
	case "", "200", "201", "204":
		if f.successStatus != "" {
			p.Fields["success_action_status"] = f.successStatus
		}
	default:
		return nil, usagef("--success-status %q: must be 200, 201 or 204", f.successStatus)
	}
	if f.redirect != "" {
		u, err := url.Parse(f.redirect)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usagef("--redirect %q: want an absolute http or https URL", f.redirect)
		}
		p.Fields["success_action_redirect"] = f.redirect
	}

	pairs := func(flagName string, list []string, each func(name, value string)) error {
		for _, kv := range list {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || !fieldName.MatchString(name) {
				return usagef("--%s %q: want name=value, the name of letters, digits, '-', '_' and '.'", flagName, kv)
			}
			each(name, value)
		}
		return nil
	}
	var reserved []string
	check := func(name string) {
		if reservedField(name) {
			reserved = append(reserved, name)
		}
	}
	if err := pairs("meta", f.meta, func(name, value string) { p.Fields[metaPrefix(d)+strings.ToLower(name)] = value }); err != nil {
		return nil, err
	}
	if err := pairs("field", f.fields, func(name, value string) { check(name); p.Fields[name] = value }); err != nil {
		return nil, err
	}
	if err := pairs("starts-with", f.startsWith, func(name, prefix string) {
		check(name)
		p.Conditions = append(p.Conditions, sign.StartsWith("$"+name, prefix))
		out.fields[name] = prefix
		out.editable[name] = true
	}); err != nil {
		return nil, err
	}
	if len(reserved) > 0 {
		return nil, usagef("%s: set by the signature or by their own flags (--content-type, --success-status, --redirect, --key-starts-with)", strings.Join(reserved, ", "))
	}

	cred, err := loadCredentials(ctx, env, &f.cred)
	if err != nil {
		return nil, usagef("%v", err)
	}
	defer cred.close()
	opts, err := f.url.options(env, d)
	if err != nil {
		return nil, err
	}
	u, err := sign.New(cred.signer, opts)
	if err != nil {
		return nil, err
	}
	if err := sign.CheckExpiry(p.Expires, u.MaxExpiry()); err != nil {
		return nil, expiryError("--duration", f.duration, u.MaxExpiry(), err)
	}
	if out.form, err = u.SignPostPolicy(ctx, p); err != nil {
		return nil, err
	}
	for name, v := range out.form.Fields {
		out.fields[name] = v
	}
	return out, nil
}

// acceptFor is the file input's accept attribute for a content-type
// prefix: "image/" becomes "image/*"; other prefixes constrain nothing.
func acceptFor(prefix string) string {
	if major, rest, ok := strings.Cut(prefix, "/"); ok && rest == "" && fieldName.MatchString(major) {
		return major + "/*"
	}
	return ""
}

// parseSize reads a byte count: N, or N with KB, MB, GB (powers of 1000)
// or KiB, MiB, GiB (powers of 1024).
func parseSize(flagName, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<53)/mult {
		return 0, usagef("%s %q: want a byte count such as 1048576, 10MB or 5MiB", flagName, s)
	}
	return n * mult, nil
}

// formJSON is --output json.
type formJSON struct {
	URL       string            `json:"url"`
	Fields    map[string]string `json:"fields"`
	ExpiresAt string            `json:"expires_at"`
	// Policy is the decoded policy document that was signed.
	Policy json.RawMessage `json:"policy"`
}

func (s *signedForm) write(w io.Writer, format string) error {
	if format == "html" {
		return formPage.Execute(w, s.page())
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(formJSON{
		URL:       s.form.URL,
		Fields:    s.fields,
		ExpiresAt: s.form.Expires.UTC().Format(time.RFC3339),
		Policy:    json.RawMessage(s.form.Policy),
	})
}

//go:embed form.html
var formHTML string

// formPage is the upload page. html/template escapes every field name and
// value for its context (attribute, text, script).
var formPage = template.Must(template.New("form").Parse(formHTML))

type pageField struct {
	Name, Value string
}

// pageData is what form.html renders.
type pageData struct {
	Resource  string
	Action    string
	Expires   string
	MaxSize   string
	Hidden    []pageField
	Editable  []pageField
	TypeField string
	Accept    string
}

func (s *signedForm) page() pageData {
	p := pageData{
		Resource:  s.resource,
		Action:    s.form.URL,
		Expires:   s.form.Expires.UTC().Format(time.RFC3339),
		TypeField: s.typeField,
		Accept:    s.accept,
	}
	if s.maxSize > 0 {
		p.MaxSize = humanSize(s.maxSize)
	}
	names := make([]string, 0, len(s.fields))
	for name := range s.fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := pageField{Name: name, Value: s.fields[name]}
		if s.editable[name] {
			p.Editable = append(p.Editable, f)
		} else {
			p.Hidden = append(p.Hidden, f)
		}
	}
	return p
}

// humanSize writes n bytes for a person: 10 MiB, 1.5 KiB, 999 bytes.
func humanSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size {
			return strconv.FormatFloat(math.Round(float64(n)/float64(u.size)*100)/100, 'f', -1, 64) + " " + u.name
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
