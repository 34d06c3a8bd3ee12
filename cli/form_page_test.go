package cli

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// pageInput is one <input> of the upload page's form.
type pageInput struct {
	typ, name, value, accept string
}

// parsePage returns the form's attributes and its inputs in document order.
func parsePage(t *testing.T, page string) (form map[string]string, inputs []pageInput, scripts int) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	attrs := func(n *html.Node) map[string]string {
		m := map[string]string{}
		for _, a := range n.Attr {
			m[a.Key] = a.Val
		}
		return m
	}
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				form, inForm = attrs(n), true
			case "input":
				if inForm {
					a := attrs(n)
					inputs = append(inputs, pageInput{typ: a["type"], name: a["name"], value: a["value"], accept: a["accept"]})
				}
			case "script":
				scripts++
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	return form, inputs, scripts
}

// TestFormHTMLPage checks that the page is the signed form: posted as
// multipart to the action URL, every field of the JSON output present with
// its value (HTML-escaped in the page, intact once parsed), the starts-with
// fields editable, and the file input last (S3 ignores fields after it).
func TestFormHTMLPage(t *testing.T) {
	keyFile := writeKeyFile(t, "uploader@p.iam.gserviceaccount.com")
	const evil = `"><script>alert(1)</script>&amp;`
	args := []string{"--key-file", keyFile, "--at", "2026-01-02T15:04:05Z", "--duration", "2h",
		"--max-size", "10MiB", "--content-type-prefix", "image/", "--key-starts-with", "in/<b>",
		"--meta", "note=" + evil, "--redirect", "https://example.com/done?a=1&b=2", "gs://media/"}
	want := runForm(t, nil, args...)
	code, page, errOut := runCmd(t, Form, "", nil, append([]string{"--output", "html"}, args...)...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b>") {
		t.Errorf("a field value reached the page unescaped:\n%s", page)
	}
	form, inputs, scripts := parsePage(t, page)
	if form["action"] != want.URL || form["method"] != "post" || form["enctype"] != "multipart/form-data" {
		t.Errorf("form %v, want a multipart POST to %s", form, want.URL)
	}
	if len(inputs) == 0 || inputs[len(inputs)-1].typ != "file" || inputs[len(inputs)-1].name != "file" {
		t.Fatalf("the last input is not the file: %+v", inputs)
	}
	if inputs[len(inputs)-1].accept != "image/*" {
		t.Errorf("file input accepts %q, want image/*", inputs[len(inputs)-1].accept)
	}
	got := map[string]pageInput{}
	for _, in := range inputs[:len(inputs)-1] {
		got[in.name] = in
	}
	if len(got) != len(want.Fields) {
		t.Errorf("page has %d fields, JSON %d", len(got), len(want.Fields))
	}
	for name, value := range want.Fields {
		in, ok := got[name]
		if !ok || in.value != value {
			t.Errorf("field %s: page %q, want %q", name, in.value, value)
		}
		wantType := "hidden"
		if name == "key" {
			wantType = "text"
		}
		if in.typ != wantType {
			t.Errorf("field %s is %q, want %s", name, in.typ, wantType)
		}
	}
	if got["x-goog-meta-note"].value != evil || got["key"].value != "in/<b>${filename}" {
		t.Errorf("values changed on the way: note %q, key %q", got["x-goog-meta-note"].value, got["key"].value)
	}
	if scripts != 1 {
		t.Errorf("%d scripts, want the one that fills the content type", scripts)
	}
	if !strings.Contains(page, "Files up to 10 MiB") {
		t.Errorf("the page does not state the size limit:\n%s", page)
	}

	// Without a content-type prefix the page is a plain form: no script.
	code, page, _ = runCmd(t, Form, "", nil, "--key-file", keyFile, "--content-type", "text/csv", "--output", "html", "gs://media/report.csv")
	if code != ExitOK {
		t.Fatal("exit", code)
	}
	if _, _, scripts := parsePage(t, page); scripts != 0 {
		t.Errorf("%d scripts in a form with an exact content type", scripts)
	}
}

func TestFormUsageErrors(t *testing.T) {
	keyFile := writeKeyFile(t, "uploader@p.iam.gserviceaccount.com")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "no target", args: nil, want: "Usage: linkissuer form"},
		{name: "no key and no prefix", args: []string{"gs://media/"}, want: "names no object"},
		{name: "key outside its prefix", args: []string{"--key-starts-with", "in/", "gs://media/out/a.txt"}, want: `does not start with the allowed key prefix "in/"`},
		{name: "bad size", args: []string{"--max-size", "10 parsecs", "gs://media/a"}, want: "--max-size"},
		{name: "min above max", args: []string{"--min-size", "2KB", "--max-size", "1KB", "gs://media/a"}, want: "above --max-size"},
		{name: "min without max", args: []string{"--min-size", "1", "gs://media/a"}, want: "--min-size needs --max-size"},
		{name: "both content types", args: []string{"--content-type", "a/b", "--content-type-prefix", "a/", "gs://media/a"}, want: "not both"},
		{name: "bad status", args: []string{"--success-status", "302", "gs://media/a"}, want: "200, 201 or 204"},
		{name: "relative redirect", args: []string{"--redirect", "/done", "gs://media/a"}, want: "absolute http or https URL"},
		{name: "reserved field", args: []string{"--field", "x-goog-signature=00", "--field", "key=b", "gs://media/a"}, want: "x-goog-signature, key: set by the signature"},
		{name: "bad meta", args: []string{"--meta", "no value", "gs://media/a"}, want: "--meta"},
		{name: "bad output", args: []string{"--output", "xml", "gs://media/a"}, want: "json or html"},
		{name: "too long", args: []string{"--duration", "8d", "gs://media/a"}, want: "--duration 8d"},
		{name: "virtual style on an IP", args: []string{"--style", "virtual", "--endpoint", "http://127.0.0.1:4443", "gs://media/a"}, want: "IP address"},
		{name: "s3 without region", args: []string{"s3://media/a"}, want: "--region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if len(args) > 0 {
				args = append([]string{"--key-file", keyFile}, args...)
			}
			code, out, errOut := runCmd(t, Form, "", nil, args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if out != "" {
				t.Errorf("printed a form: %s", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}
