package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// envFuncs are the calls that read or change the process environment.
var envFuncs = map[string]map[string]bool{
	"os":      {"Getenv": true, "LookupEnv": true, "Environ": true, "ExpandEnv": true, "Setenv": true, "Unsetenv": true, "Clearenv": true},
	"syscall": {"Getenv": true, "Environ": true, "Setenv": true, "Unsetenv": true, "Clearenv": true},
}

// envExempt are the trees that may touch the environment: this command's
// main (it hands os.Getenv to the commands), test helpers and the load
// tests (programs that start emulators for their own children).
func envExempt(dir string) bool {
	return dir == "." || dir == "internal" || strings.HasPrefix(dir, "internal/") || dir == "loadtest" || strings.HasPrefix(dir, "loadtest/")
}

// TestNoLibraryReadsEnvironment keeps configuration in one place: only
// package config turns variables into settings, through the Getenv the
// command gives it; every other package is handed its values. It parses
// every non-test Go file outside the exempt trees and fails on each call
// of an os or syscall environment function.
func TestNoLibraryReadsEnvironment(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || envExempt(filepath.ToSlash(filepath.Dir(path))) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		// The names this file gives the os and syscall packages.
		names := map[string]string{}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if envFuncs[p] == nil {
				continue
			}
			name := p
			if imp.Name != nil {
				name = imp.Name.Name
			}
			names[name] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			if pkg, ok := names[id.Name]; ok && envFuncs[pkg][sel.Sel.Name] {
				t.Errorf("%s: %s.%s: libraries take configuration from their caller; read variables in package config", fset.Position(sel.Pos()), pkg, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("parsed %d files; the walk missed the tree", files)
	}
}
