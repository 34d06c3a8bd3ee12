package deploy

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// tfModule is one directory of .tf files, parsed, indexed by block.
type tfModule struct {
	dir       string
	variables map[string]*hclsyntax.Block
	locals    map[string]hclsyntax.Expression
	resources map[string]*hclsyntax.Block // "TYPE.NAME"
	data      map[string]*hclsyntax.Block // "TYPE.NAME"
	modules   map[string]*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
}

// parseTF parses one .tf file.
func parseTF(path string) (*hclsyntax.Body, error) {
	f, diags := hclparse.NewParser().ParseHCLFile(path)
	if diags.HasErrors() {
		return nil, diags
	}
	return f.Body.(*hclsyntax.Body), nil
}

func loadModule(t *testing.T, rel string) *tfModule {
	t.Helper()
	m := &tfModule{
		dir:       repoPath(rel),
		variables: map[string]*hclsyntax.Block{},
		locals:    map[string]hclsyntax.Expression{},
		resources: map[string]*hclsyntax.Block{},
		data:      map[string]*hclsyntax.Block{},
		modules:   map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{},
	}
	files, err := filepath.Glob(filepath.Join(m.dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no .tf files (%v)", rel, err)
	}
	for _, f := range files {
		body, err := parseTF(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, b := range body.Blocks {
			key := strings.Join(b.Labels, ".")
			index := map[string]map[string]*hclsyntax.Block{
				"variable": m.variables, "resource": m.resources, "data": m.data, "module": m.modules, "output": m.outputs,
			}[b.Type]
			switch {
			case b.Type == "locals":
				for name, a := range b.Body.Attributes {
					if _, dup := m.locals[name]; dup {
						t.Errorf("%s: local.%s defined twice", f, name)
					}
					m.locals[name] = a.Expr
				}
			case index != nil:
				if _, dup := index[key]; dup {
					t.Errorf("%s: %s %q defined twice", f, b.Type, key)
				}
				index[key] = b
			}
		}
	}
	return m
}

// resource returns the resource block TYPE.NAME or fails the test.
func (m *tfModule) resource(t *testing.T, key string) *hclsyntax.Block {
	t.Helper()
	b, ok := m.resources[key]
	if !ok {
		t.Fatalf("%s: no resource %s", m.dir, key)
	}
	return b
}

// evalContext is var (defaults, then overrides) and every local that can be
// evaluated without resources, with the functions the module uses.
func (m *tfModule) evalContext(t *testing.T, overrides map[string]cty.Value) *hcl.EvalContext {
	t.Helper()
	vars := map[string]cty.Value{}
	for name, b := range m.variables {
		if a, ok := b.Body.Attributes["default"]; ok {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("variable %s: default: %v", name, diags)
			}
			vars[name] = v
		}
	}
	maps.Copy(vars, overrides)
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.EmptyObjectVal},
		Functions: tfFunctions,
	}
	locals := map[string]cty.Value{}
	for progress := true; progress; {
		progress = false
		for name, expr := range m.locals {
			if _, done := locals[name]; done {
				continue
			}
			if v, diags := expr.Value(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
				locals[name] = v
				ctx.Variables["local"] = cty.ObjectVal(locals)
				progress = true
			}
		}
	}
	return ctx
}

// eval evaluates expr, failing the test if it cannot be.
func eval(t *testing.T, ctx *hcl.EvalContext, expr hcl.Expression) cty.Value {
	t.Helper()
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("evaluating %s: %v", exprText(expr), diags)
	}
	return v
}

func exprText(expr hcl.Expression) string {
	r := expr.Range()
	data, err := os.ReadFile(r.Filename)
	if err != nil || r.End.Byte > len(data) {
		return r.String()
	}
	return fmt.Sprintf("%s (%s)", data[r.Start.Byte:r.End.Byte], r)
}

// tfFunctions are the Terraform functions the module's locals call.
var tfFunctions = map[string]function.Function{
	"compact":         stdlib.CompactFunc,
	"concat":          stdlib.ConcatFunc,
	"contains":        stdlib.ContainsFunc,
	"flatten":         stdlib.FlattenFunc,
	"floor":           stdlib.FloorFunc,
	"join":            stdlib.JoinFunc,
	"keys":            stdlib.KeysFunc,
	"length":          stdlib.LengthFunc,
	"max":             stdlib.MaxFunc,
	"merge":           stdlib.MergeFunc,
	"setintersection": stdlib.SetIntersectionFunc,
	"setproduct":      stdlib.SetProductFunc,
	"values":          stdlib.ValuesFunc,
	"toset":           convertFunc(cty.Set(cty.DynamicPseudoType)),
	"tostring":        convertFunc(cty.String),
	"sum": function.New(&function.Spec{
		Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Number)}},
		Type:   function.StaticReturnType(cty.Number),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			total := cty.Zero
			for _, v := range args[0].AsValueSlice() {
				total = total.Add(v)
			}
			return total, nil
		},
	}),
}

func convertFunc(to cty.Type) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
		Type: func(args []cty.Value) (cty.Type, error) {
			v, err := convert.Convert(args[0], to)
			return v.Type(), err
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) { return convert.Convert(args[0], to) },
	})
}

// refs renders the references of expr ("google_pubsub_topic.results.name",
// "local.names.sub_objects", "each.value"), index steps left out.
func refs(expr hcl.Expression) []string {
	var out []string
	for _, tr := range expr.Variables() {
		var parts []string
		for _, step := range tr {
			switch s := step.(type) {
			case hcl.TraverseRoot:
				parts = append(parts, s.Name)
			case hcl.TraverseAttr:
				parts = append(parts, s.Name)
			}
		}
		out = append(out, strings.Join(parts, "."))
	}
	sort.Strings(out)
	return out
}

// refersTo reports whether expr references target or something under it.
func refersTo(expr hcl.Expression, target string) bool {
	for _, r := range refs(expr) {
		if r == target || strings.HasPrefix(r, target+".") {
			return true
		}
	}
	return false
}

// attr returns a block's attribute expression or fails the test.
func attr(t *testing.T, b *hclsyntax.Block, name string) hclsyntax.Expression {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Fatalf("%s %v (%s): no attribute %s", b.Type, b.Labels, b.DefRange(), name)
	}
	return a.Expr
}

// child returns the nested block of a type (and labels), or nil.
func child(b *hclsyntax.Block, typ string, labels ...string) *hclsyntax.Block {
	for _, c := range b.Body.Blocks {
		if c.Type == typ && slices.Equal(c.Labels, labels) {
			return c
		}
	}
	return nil
}

// path walks nested blocks: path(b, "template", "containers", "startup_probe").
func path(t *testing.T, b *hclsyntax.Block, types ...string) *hclsyntax.Block {
	t.Helper()
	for _, typ := range types {
		next := child(b, typ)
		if next == nil {
			t.Fatalf("%s %v (%s): no %s block", b.Type, b.Labels, b.DefRange(), typ)
		}
		b = next
	}
	return b
}

// entries returns the key -> value expressions of a map-building
// expression: object literals, merge(...), for expressions, conditionals
// and references to locals, followed through locals.
func (m *tfModule) entries(t *testing.T, expr hcl.Expression) map[string]hclsyntax.Expression {
	t.Helper()
	out := map[string]hclsyntax.Expression{}
	var walk func(e hcl.Expression, depth int)
	walk = func(e hcl.Expression, depth int) {
		if depth > 20 {
			t.Fatalf("entries: %s is too deep", exprText(expr))
		}
		switch e := e.(type) {
		case *hclsyntax.ObjectConsExpr:
			for _, item := range e.Items {
				k, diags := item.KeyExpr.Value(nil)
				if diags.HasErrors() || k.Type() != cty.String {
					t.Fatalf("entries: key %s is not a literal", exprText(item.KeyExpr))
				}
				out[k.AsString()] = item.ValueExpr
			}
		case *hclsyntax.FunctionCallExpr:
			if e.Name != "merge" {
				t.Fatalf("entries: %s: only merge() is followed", exprText(e))
			}
			for _, a := range e.Args {
				walk(a, depth+1)
			}
		case *hclsyntax.ForExpr:
			walk(e.ValExpr, depth+1)
		case *hclsyntax.ConditionalExpr:
			walk(e.TrueResult, depth+1)
			walk(e.FalseResult, depth+1)
		case *hclsyntax.IndexExpr:
			walk(e.Collection, depth+1)
		case *hclsyntax.ScopeTraversalExpr:
			if e.Traversal.RootName() != "local" || len(e.Traversal) < 2 {
				t.Fatalf("entries: %s is not a local", exprText(e))
			}
			name := e.Traversal[1].(hcl.TraverseAttr).Name
			local, ok := m.locals[name]
			if !ok {
				t.Fatalf("entries: no local.%s", name)
			}
			walk(local, depth+1)
		default:
			t.Fatalf("entries: cannot follow %T at %s", e, exprText(e))
		}
	}
	walk(expr, 0)
	return out
}

// stringsOf converts a list, tuple or set of strings.
func stringsOf(t *testing.T, v cty.Value) []string {
	t.Helper()
	var out []string
	for _, e := range v.AsValueSlice() {
		if e.Type() != cty.String {
			t.Fatalf("want strings, got %s", e.Type().FriendlyName())
		}
		out = append(out, e.AsString())
	}
	return out
}

// stringMap converts an object or map of strings.
func stringMap(t *testing.T, v cty.Value) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, e := range v.AsValueMap() {
		if e.Type() == cty.String {
			out[k] = e.AsString()
		}
	}
	return out
}
