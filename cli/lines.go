package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// eachLine calls each with every entry of a list file (- is stdin), as
// `sign --from-file` and `export --objects` read them: one entry per line,
// a CRLF ending trimmed, blank lines and lines starting with # skipped,
// lines up to 1 MiB. It stops early when each returns false.
func eachLine(env Env, file string, each func(line string) bool) error {
	var r io.Reader = env.Stdin
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return err
		}
		defer fh.Close()
		r = fh
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !each(line) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	return nil
}
