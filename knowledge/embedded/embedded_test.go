package embedded_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
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

func TestPluralsAndDiacritics(t *testing.T) {
	ix := MustOpen(t)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{
		chunk("docs", "d1", 0, "Connecting the workspaces takes a minute."),
		chunk("docs", "d2", 0, "Le café est fermé."),
		chunk("docs", "d3", 0, "Nothing relevant here, except one directory entry."),
	})
	tests := []struct{ query, want string }{
		{"workspace", "d1:0"},
		{"connecting workspaces", "d1:0"},
		{"directory entries", "d3:0"},
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

// schemaV1 is the schema of version 1 files, before vectors.
const schemaV1 = `
CREATE TABLE chunks (
	seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, knowledge_base TEXT NOT NULL, document_id TEXT NOT NULL,
	document TEXT NOT NULL, title TEXT NOT NULL, headings TEXT NOT NULL, heading_path TEXT NOT NULL,
	position INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX chunks_document ON chunks (knowledge_base, document_id);
CREATE VIRTUAL TABLE chunks_fts USING fts5 (title, headings, text, content = 'chunks', content_rowid = 'seq',
	tokenize = 'porter unicode61 remove_diacritics 2');
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
	INSERT INTO chunks_fts (rowid, title, headings, text) VALUES (new.seq, new.title, new.headings, new.text);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
	INSERT INTO chunks_fts (chunks_fts, rowid, title, headings, text) VALUES ('delete', old.seq, old.title, old.headings, old.text);
END;
INSERT INTO chunks (id, knowledge_base, document_id, document, title, headings, heading_path, position, text)
	VALUES ('d1:0', 'docs', 'd1', 'd1.md', 'Ops', 'Ops', '["Ops"]', 0, 'Back up the index file every night.');
PRAGMA user_version = 1;
`

// TestMigrateV1 opens a file written before vectors: its chunks stay
// searchable, and vectors can be added.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(schemaV1); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ix := MustOpenPath(t, path)
	got := indextest.MustSearch(t, ix, knowledge.Query{Text: "backup night"})
	if len(got) != 1 || got[0].ID != "d1:0" || !slices.Equal(got[0].HeadingPath, []string{"Ops"}) {
		t.Fatalf("after migration Search = %+v", got)
	}
	vec := indextest.Embed("archive nightly")
	if got := indextest.MustSearch(t, ix, knowledge.Query{Vector: vec, Mode: engine.SearchVector}); len(got) != 0 {
		t.Errorf("a migrated chunk without a vector was found by vector search: %+v", got)
	}
	c := chunk("docs", "d1", 0, "Back up the index file every night.")
	c.Vector = indextest.Embed(c.Text)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{c})
	if got := indextest.MustSearch(t, ix, knowledge.Query{Vector: vec, Mode: engine.SearchVector}); len(got) != 1 {
		t.Errorf("after upserting its vector, vector search = %+v", got)
	}
	if docs := indextest.MustDocuments(t, ix, ""); len(docs) != 1 {
		t.Errorf("Documents = %v", docs)
	}
	// Opening again leaves the migrated file as it is.
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix2, err := embedded.Open(ctx, embedded.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer ix2.Close()
	if got := indextest.MustSearch(t, ix2, knowledge.Query{Text: "index night", Vector: vec}); len(got) != 1 || got[0].Scores.Vector == nil || got[0].Scores.Lexical == nil {
		t.Errorf("after reopening hybrid search = %+v", got)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = embedded.Open(context.Background(), embedded.Config{Path: path})
	if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(engine.ErrorMessage(err), "newer ConvoSphere") {
		t.Errorf("Open of a newer file = %v, want EINVALID", err)
	}
}

// TestTwoOpenersVectors: vectors one process keeps in memory follow what
// another process writes to the file.
func TestTwoOpenersVectors(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	console, bot := MustOpenPath(t, path), MustOpenPath(t, path)
	withVector := func(kb, doc, text string) knowledge.Chunk {
		c := chunk(kb, doc, 0, text)
		c.Vector = indextest.Embed(text)
		return c
	}
	search := func(ix *embedded.Index, query string) []string {
		t.Helper()
		var out []string
		for _, p := range indextest.MustSearch(t, ix, knowledge.Query{Vector: indextest.Embed(query), Mode: engine.SearchVector}) {
			out = append(out, p.ID)
		}
		return out
	}
	indextest.MustUpsert(t, console, []knowledge.Chunk{withVector("docs", "d1", "Archive the database every night.")})
	if got := search(bot, "snapshot"); !slices.Equal(got, []string{"d1:0"}) {
		t.Fatalf("bot found %q, want d1:0", got)
	}
	indextest.MustUpsert(t, console, []knowledge.Chunk{withVector("docs", "d2", "Snapshots of the uploads.")})
	if got := search(bot, "snapshot"); len(got) != 2 {
		t.Errorf("after the console added d2 the bot found %q", got)
	}
	if err := console.DeleteDocument(ctx, "docs", "d1"); err != nil {
		t.Fatal(err)
	}
	if got := search(bot, "snapshot"); !slices.Equal(got, []string{"d2:0"}) {
		t.Errorf("after the console deleted d1 the bot found %q", got)
	}
	// A chunk id moved from one knowledge base to another.
	moved := withVector("other", "d3", "Snapshot rotation.")
	moved.ID = "d2:0"
	indextest.MustUpsert(t, console, []knowledge.Chunk{moved})
	got := indextest.MustSearch(t, bot, knowledge.Query{Vector: indextest.Embed("snapshot"), Mode: engine.SearchVector})
	if len(got) != 1 || got[0].KnowledgeBase != "other" {
		t.Errorf("after moving chunk d2:0 the bot found %+v", got)
	}
	if err := console.DeleteKnowledgeBase(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if got := search(bot, "snapshot"); len(got) != 0 {
		t.Errorf("after deleting the knowledge base the bot found %q", got)
	}
}

// TestReplaceOnlyDocumentChangesDimensions: a knowledge base whose only
// vectors are those of the document being replaced takes the new size.
func TestReplaceOnlyDocumentChangesDimensions(t *testing.T) {
	ix := MustOpen(t)
	c := chunk("docs", "d1", 0, "Archive the database.")
	c.Vector = []float32{1, 0, 0}
	indextest.MustUpsert(t, ix, []knowledge.Chunk{c, chunk("docs", "d2", 0, "No vector here.")})
	c.Vector = []float32{1, 0}
	indextest.MustUpsert(t, ix, []knowledge.Chunk{c})
	got := indextest.MustSearch(t, ix, knowledge.Query{Vector: []float32{1, 1}, Mode: engine.SearchVector})
	if len(got) != 1 || got[0].ID != "d1:0" || math.Abs(got[0].Score-math.Sqrt(0.5)) > 1e-6 {
		t.Errorf("Search = %+v", got)
	}
	// A zero vector is stored but matches nothing.
	z := chunk("docs", "d3", 0, "Zero.")
	z.Vector = []float32{0, 0}
	indextest.MustUpsert(t, ix, []knowledge.Chunk{z})
	if got := indextest.MustSearch(t, ix, knowledge.Query{Vector: []float32{0, 1}, Mode: engine.SearchVector}); len(got) != 0 {
		t.Errorf("Search found %+v; want nothing (orthogonal and zero vectors)", got)
	}
}

// TestConcurrentVectorSearch searches vectors while another goroutine
// writes: every search sees a consistent knowledge base.
func TestConcurrentVectorSearch(t *testing.T) {
	ix := MustOpen(t)
	ctx := context.Background()
	base := chunk("docs", "base", 0, "Archive the database every night.")
	base.Vector = indextest.Embed(base.Text)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{base})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := range 20 {
			c := chunk("docs", fmt.Sprintf("w%d", n%3), 0, fmt.Sprintf("Snapshot %d of the uploads.", n))
			c.Vector = indextest.Embed(c.Text)
			if err := ix.Upsert(ctx, []knowledge.Chunk{c}); err != nil {
				t.Errorf("Upsert: %v", err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 20 {
				got, err := ix.Search(ctx, knowledge.Query{Text: "archive", Vector: indextest.Embed("archive"), Limit: 10})
				if err != nil {
					t.Errorf("Search: %v", err)
					return
				}
				if len(got) == 0 || got[0].ID != "base:0" {
					t.Errorf("Search during writes = %+v, want base:0 first", got)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := indextest.MustSearch(t, ix, knowledge.Query{Vector: indextest.Embed("snapshot uploads"), Mode: engine.SearchVector}); len(got) != 4 {
		t.Errorf("after the writes vector search found %d chunks, want base and the 3 written documents", len(got))
	}
}
