package config

import (
	"flag"
	"os"
	"regexp"
	"testing"
)

// readmeTables are the configuration tables of the README, each between
// <!-- config:NAME --> and <!-- /config:NAME -->: the flags worker and
// serve share, then each one's own, then export's.
func readmeTables() map[string]string {
	settings := func(register func(*flag.FlagSet)) []Setting {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		register(fs)
		return Settings(fs)
	}
	shared := settings(func(fs *flag.FlagSet) { new(Service).Register(fs, noEnv) })
	inShared := map[string]bool{}
	for _, s := range shared {
		inShared[s.Flag] = true
	}
	own := func(all []Setting) []Setting {
		var out []Setting
		for _, s := range all {
			if !inShared[s.Flag] {
				out = append(out, s)
			}
		}
		return out
	}
	return map[string]string{
		"service": Markdown(shared),
		"worker":  Markdown(own(settings(func(fs *flag.FlagSet) { new(Worker).Register(fs, noEnv) }))),
		"serve":   Markdown(own(settings(func(fs *flag.FlagSet) { new(Serve).Register(fs, noEnv) }))),
		"export":  Markdown(settings(func(fs *flag.FlagSet) { new(Export).Register(fs, noEnv) })),
	}
}

var readmeBlock = regexp.MustCompile(`(?s)(<!-- config:([a-z]+) -->\n).*?(<!-- /config:[a-z]+ -->)`)

// The README's configuration tables are the flags' own: -update rewrites
// them from the config types.
func TestReadmeConfigurationTables(t *testing.T) {
	const path = "../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tables := readmeTables()
	seen := map[string]bool{}
	got := readmeBlock.ReplaceAllStringFunc(string(data), func(block string) string {
		m := readmeBlock.FindStringSubmatch(block)
		table, ok := tables[m[2]]
		if !ok {
			t.Errorf("README block config:%s: no such table", m[2])
			return block
		}
		seen[m[2]] = true
		return m[1] + "\n" + table + "\n" + m[3]
	})
	for name := range tables {
		if !seen[name] {
			t.Errorf("README has no <!-- config:%s --> block", name)
		}
	}
	if got == string(data) {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the README's configuration tables differ from the flags; go test ./config -update rewrites them")
}
