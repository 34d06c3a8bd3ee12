package config

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Setting is one flag as -h and the README show it: its name, the
// variables that supply its default (the first one set wins), the built-in
// default and its meaning.
type Setting struct {
	Flag    string
	Env     []string
	Default string
	Usage   string
}

// Label names a setting in errors: "--flag / VAR" or "--flag".
func (s Setting) Label() string {
	if len(s.Env) == 0 {
		return "--" + s.Flag
	}
	return "--" + s.Flag + " / " + strings.Join(s.Env, ", ")
}

// binder registers flags with environment defaults on one flag set.
type binder struct {
	fs     *flag.FlagSet
	getenv Getenv
}

// usage appends the variables' marker, "[$A, $B]", which -h shows and
// CheckEnv and the deployment tests read.
func usage(text string, env []string) string {
	if len(env) == 0 {
		return text
	}
	return text + " [$" + strings.Join(env, ", $") + "]"
}

// first returns the first of env that is set, or "".
func (b binder) first(env []string) (key, value string) {
	for _, k := range env {
		if v := b.getenv(k); v != "" {
			return k, v
		}
	}
	return "", ""
}

func (b binder) str(p *string, name string, env []string, def, text string) {
	if _, v := b.first(env); v != "" {
		def = v
	}
	b.fs.StringVar(p, name, def, usage(text, env))
}

func (b binder) int(p *int, name string, env []string, def int, text string) {
	if k, _ := b.first(env); k != "" {
		def = Default(b.getenv, k, def, ParseInt)
	}
	b.fs.IntVar(p, name, def, usage(text, env))
}

func (b binder) float(p *float64, name string, env []string, def float64, text string) {
	if k, _ := b.first(env); k != "" {
		def = Default(b.getenv, k, def, ParseFloat)
	}
	b.fs.Float64Var(p, name, def, usage(text, env))
}

func (b binder) bool(p *bool, name string, env []string, def bool, text string) {
	if k, _ := b.first(env); k != "" {
		def = Default(b.getenv, k, def, ParseBool)
	}
	b.fs.BoolVar(p, name, def, usage(text, env))
}

func (b binder) dur(p *time.Duration, name string, env []string, def time.Duration, text string) {
	if k, _ := b.first(env); k != "" {
		def = Default(b.getenv, k, def, ParseDuration)
	}
	b.fs.DurationVar(p, name, def, usage(text, env))
}

// list is a repeatable flag whose default is a comma-separated variable.
func (b binder) list(p *[]string, name string, env []string, text string) {
	if _, v := b.first(env); v != "" {
		*p = strings.Split(v, ",")
	}
	b.fs.Var((*List)(p), name, usage(text, env))
}

// List is a repeatable string flag.
type List []string

func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *List) Set(v string) error { *l = append(*l, v); return nil }

// Settings lists the flags of fs with the variables their usage names, in
// flag order. It is what the README's configuration table is checked
// against.
func Settings(fs *flag.FlagSet) []Setting {
	var out []Setting
	fs.VisitAll(func(f *flag.Flag) {
		s := Setting{Flag: f.Name, Default: f.DefValue, Usage: f.Usage}
		if i := strings.LastIndex(f.Usage, " [$"); i >= 0 && strings.HasSuffix(f.Usage, "]") {
			s.Usage = f.Usage[:i]
			for _, e := range strings.Split(f.Usage[i+3:len(f.Usage)-1], ",") {
				e = strings.TrimPrefix(strings.TrimSpace(e), "$")
				if name, _, _ := strings.Cut(e, "="); name != "" {
					s.Env = append(s.Env, strings.Fields(name)[0])
				}
			}
		}
		out = append(out, s)
	})
	return out
}

// Markdown renders settings as a table: flag, variable, default, meaning.
func Markdown(settings []Setting) string {
	var b strings.Builder
	b.WriteString("| Flag | Variable | Default | Meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		env := make([]string, len(s.Env))
		for i, e := range s.Env {
			env[i] = "`" + e + "`"
		}
		def := s.Default
		if def == "" || def == "[]" {
			def = ""
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n", s.Flag, strings.Join(env, ", "), def, cell(s.Usage))
	}
	return b.String()
}

// cell escapes a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// splitList splits a comma-separated value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Split splits a comma-separated setting, dropping blanks.
func Split(s string) []string { return splitList(s) }

var _ = strconv.Itoa
