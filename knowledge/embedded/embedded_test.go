package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/embedded"
	"github.com/convosphere/convosphere/knowledge/indextest"
)

// MustOpen opens an index in a new file under tb.TempDir and closes it at
// the end of the test.
func MustOpen(tb testing.TB) *embedded.Index {
	tb.Helper()
	return MustOpenPath(tb, filepath.Join(tb.TempDir(), "index.db"))
}

// MustOpenPath opens the index file at path and closes it at the end of the test.
func MustOpenPath(tb testing.TB, path string) *embedded.Index {
	tb.Helper()
	ix, err := embedded.Open(context.Background(), embedded.Config{Path: path})
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := ix.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return ix
}

func TestConformance(t *testing.T) {
	indextest.Run(t, func(tb testing.TB) knowledge.Index { return MustOpen(tb) })
}

func TestOpenValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  embedded.Config
	}{
		{"empty path", embedded.Config{}},
		{"memory", embedded.Config{Path: ":memory:"}},
		{"uri", embedded.Config{Path: "file:index.db?mode=memory"}},
		{"negative timeout", embedded.Config{Path: "index.db", BusyTimeout: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := embedded.Open(context.Background(), tt.cfg)
			if code := engine.ErrorCode(err); code != engine.EINVALID {
				t.Errorf("Open error = %v (code %q), want %q", err, code, engine.EINVALID)
			}
		})
	}
}

func chunk(kb, doc string, pos int, text string) knowledge.Chunk {
	return knowledge.Chunk{
		ID: knowledge.ChunkID(doc, pos), KnowledgeBase: kb, DocumentID: doc, Document: doc + ".md",
		Title: doc, HeadingPath: []string{"Setup", "Slack"}, Position: pos, Text: text,
	}
}

func TestReopenKeepsChunks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "index.db") // the directory is created
	ix, err := embedded.Open(ctx, embedded.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	indextest.MustUpsert(t, ix, []knowledge.Chunk{chunk("docs", "d1", 0, "Connect Slack with Socket Mode.")})
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = MustOpenPath(t, path)
	got := indextest.MustSearch(t, ix, knowledge.Query{Text: "socket"})
	if len(got) != 1 || got[0].ID != "d1:0" || !slices.Equal(got[0].HeadingPath, []string{"Setup", "Slack"}) {
		t.Errorf("after reopen Search = %+v", got)
	}
}

// TestTwoOpeners is the console and the bot opening one file: what one
// writes, the other finds, and both can write.
func TestTwoOpeners(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	console, bot := MustOpenPath(t, path), MustOpenPath(t, path)
	indextest.MustUpsert(t, console, []knowledge.Chunk{chunk("docs", "d1", 0, "Connect Slack with Socket Mode.")})
	if got := indextest.MustSearch(t, bot, knowledge.Query{Text: "slack"}); len(got) != 1 {
		t.Fatalf("second opener found %d passages, want 1", len(got))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i, ix := range []*embedded.Index{console, bot} {
		wg.Go(func() {
			for n := range 20 {
				doc := fmt.Sprintf("w%d", i)
				if err := ix.Upsert(ctx, []knowledge.Chunk{chunk("docs", doc, 0, fmt.Sprintf("Slack note %d", n))}); err != nil {
					t.Errorf("opener %d Upsert: %v", i, err)
					return
				}
				if _, err := ix.Search(ctx, knowledge.Query{Text: "slack note"}); err != nil {
					t.Errorf("opener %d Search: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if docs := indextest.MustDocuments(t, bot, "docs"); len(docs) != 3 {
		t.Errorf("Documents = %v, want d1, w0 and w1", docs)
	}
}

func TestSearchCanceled(t *testing.T) {
	ix := MustOpen(t)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{chunk("docs", "d1", 0, "Connect Slack.")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Search(ctx, knowledge.Query{Text: "slack"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Search with a canceled context = %v, want context.Canceled", err)
	}
}

// TestFuzzQueries throws random strings built from FTS5 syntax at Search:
// none may fail.
func TestFuzzQueries(t *testing.T) {
	ix := MustOpen(t)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{
		chunk("docs", "d1", 0, "Connect Slack with Socket Mode and a bot token."),
		chunk("docs", "d2", 0, "Register the /ask slash command in Discord."),
	})
	alphabet := []string{`"`, `'`, "(", ")", "*", "-", "+", "^", ":", "{", "}", "[", "]", ",", ".", "/", `\`,
		" ", " ", "NEAR", "AND", "OR", "NOT", "near", "slack", "bot", "é", "\u0301", "日本", "🚀", "\u200b", "\x00", "\t", "\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		var sb strings.Builder
		for range rng.IntN(12) + 1 {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		q := sb.String()
		if _, err := ix.Search(context.Background(), knowledge.Query{Text: q}); err != nil {
			t.Fatalf("query %d %q: %v", i, q, err)
		}
	}
}

func TestStemmingAndDiacritics(t *testing.T) {
	ix := MustOpen(t)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{
		chunk("docs", "d1", 0, "Connecting the workspaces takes a minute."),
		chunk("docs", "d2", 0, "Le café est fermé."),
		chunk("docs", "d3", 0, "Nothing relevant here."),
	})
	tests := []struct{ query, want string }{
		{"connect workspace", "d1:0"},
		{"connected", "d1:0"},
		{"cafe ferme", "d2:0"},
		{"CAFÉ", "d2:0"},
	}
	for _, tt := range tests {
		got := indextest.MustSearch(t, ix, knowledge.Query{Text: tt.query})
		if len(got) == 0 || got[0].ID != tt.want {
			t.Errorf("Search(%q) = %+v, want %s first", tt.query, got, tt.want)
		}
	}
}
