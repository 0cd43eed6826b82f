package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// TestReportSection writes a run's section and plots into a document
// that holds another benchmark's section: that one is kept, the plots
// exist and are linked, and a failed check says "not met".
func TestReportSection(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "benchmarks.md")
	other := benchkit.Section{Name: "bench/slack"}
	kept, err := other.Replace("", "## Slack\nkept\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, []byte(kept), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	for i := range 3 {
		r := l.add(platSlack, "E"+string(rune('0'+i)), "t", i)
		l.sent(r, time.Now())
		l.acked(r, time.Duration(i+1)*time.Millisecond, true)
		l.message(platSlack, r.ID, time.Now())
		l.shown(platSlack, r.ID, answerEnd, time.Now())
	}
	l.add(platSlack, "E9", "u", 0) // never answered
	s := &Scenario{Name: scenarioConversations, LoadSeconds: 60,
		rss: []rssSample{{0, 50 << 20}, {30, 60 << 20}, {59, 61 << 20}}}
	s.summarise(l, &environment{slack: &slackFake{}, discord: &discordFake{}, mm: &mattermostFake{}})
	s.Memory = summariseRSS(s.rss, 0, 60)
	r := &Run{Date: time.Unix(1_800_000_000, 0).UTC(), Command: "go run ./bench/load -out docs/benchmarks.md",
		Machine: benchkit.Machine{CPU: "X", Cores: 2}, Go: "go1.26", Store: "embedded", Scenarios: []*Scenario{s}}
	if err := writeReport(doc, filepath.Join(dir, "img"), r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	body, ok, err := section.Find(text)
	if !ok || err != nil {
		t.Fatalf("no load section: %v\n%s", err, text)
	}
	for _, want := range []string{"## Load (bench/load)", "- Machine: X, 2 cores", "- Date: 2027-01-15T08:00:00Z", "- Command: `go run ./bench/load -out docs/benchmarks.md`",
		"| slack | 2 | 4 | 3 |", "![Acknowledgement latency under load](img/load-ack.svg)", "![Bot memory over time](img/load-rss.svg)",
		"exactly one message each: 3 of 4 (1 missing", "**not met**"} {
		if !strings.Contains(body, want) {
			t.Errorf("the section lacks %q:\n%s", want, body)
		}
	}
	if got, _, _ := other.Find(text); got != "## Slack\nkept\n" {
		t.Errorf("the other section became %q", got)
	}
	for _, f := range []string{"load-ack.svg", "load-answer.svg", "load-rss.svg"} {
		svg, err := os.ReadFile(filepath.Join(dir, "img", f))
		if err != nil || !strings.Contains(string(svg), "<title id=\"title\">") {
			t.Errorf("%s: %v", f, err)
		}
	}
	var data Run
	if ok, err := section.Data(text, &data); !ok || err != nil || data.Command != r.Command || len(data.Scenarios) != 1 {
		t.Errorf("data comment: %v, %v, %+v", ok, err, data)
	}
}
