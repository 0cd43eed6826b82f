// Package benchkit holds what the benchmarks under bench/ share: where a
// run happened (Machine, LoadAverage), how it was invoked (Command, with
// database passwords redacted), latency percentiles (Summarise), number
// formats for the Markdown tables, the generated section of
// docs/benchmarks.md (Section), the systems under test as child processes
// (StartServer, FreePort, /proc readings of their memory and CPU), and a
// PostgreSQL server with fresh databases (StartPostgres, FreshDatabase).
//
// It is for benchmarks only: nothing outside bench/ imports it.
package benchkit

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Logf writes a progress line with the time of day to standard error.
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Command is how a benchmark was invoked, as a user would type it: "go run
// ./PKG" and args, shell-quoted where needed, with the passwords of URLs
// replaced (so that a report can show it).
func Command(pkg string, args []string) string {
	out := []string{"go", "run", "./" + strings.TrimPrefix(pkg, "./")}
	for _, a := range args {
		if strings.Contains(a, "://") {
			a = RedactURL(a)
		}
		if strings.ContainsAny(a, " \t'\"$&?*;|<>()`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}
