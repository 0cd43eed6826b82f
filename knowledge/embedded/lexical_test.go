package embedded_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/embedded"
	"github.com/convosphere/convosphere/knowledge/indextest"
)

// syncQueries cover words that the writes below add, remove and move.
var syncQueries = []string{"token scopes", "backup nightly", "rotate secrets", "gateway shards", "token", "retention policy"}

// mustSame checks that a long-lived index, brought up to date from the
// change log, ranks and scores exactly as an index loaded afresh.
func mustSame(t *testing.T, step string, stale *embedded.Index, path string) {
	t.Helper()
	fresh := MustOpenPath(t, path)
	for _, kbs := range [][]string{nil, {"docs"}, {"ops"}} {
		for _, q := range syncQueries {
			query := knowledge.Query{Text: q, KnowledgeBases: kbs, Limit: 20}
			got := indextest.MustSearch(t, stale, query)
			want := indextest.MustSearch(t, fresh, query)
			if !slices.EqualFunc(got, want, func(a, b engine.Passage) bool { return a.ID == b.ID && a.Score == b.Score }) {
				t.Fatalf("%s: Search(%q in %v) by the long-lived index = %s, afresh = %s", step, q, kbs, hits(got), hits(want))
			}
		}
	}
}

func hits(ps []engine.Passage) string {
	s := ""
	for _, p := range ps {
		s += fmt.Sprintf("%s:%.6f ", p.ID, p.Score)
	}
	return s
}

// TestChangeLogSync writes through one index while another, which loaded
// its postings before, keeps searching: adds, replacements, deletes, a
// chunk moved between knowledge bases, a deleted knowledge base and a
// pruned change log all reach it.
func TestChangeLogSync(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	writer, reader := MustOpenPath(t, path), MustOpenPath(t, path)
	doc := func(kb, id string, texts ...string) []knowledge.Chunk {
		var cs []knowledge.Chunk
		for i, text := range texts {
			cs = append(cs, chunk(kb, id, i, text))
		}
		return cs
	}
	indextest.MustUpsert(t, writer, doc("docs", "slack", "Add the bot token scopes chat:write.", "Rotate secrets every quarter."))
	indextest.MustUpsert(t, writer, doc("ops", "backup", "Back up the index nightly.", "Retention policy: 30 days of backups."))
	mustSame(t, "initial load", reader, path)

	steps := []struct {
		name  string
		write func() error
	}{
		{"add a document", func() error {
			return writer.Upsert(ctx, doc("docs", "discord", "Gateway shards need the bot token.", "Token scopes for slash commands."))
		}},
		{"replace a document with fewer chunks", func() error {
			return writer.Upsert(ctx, doc("docs", "slack", "Token scopes changed: chat:write and im:history."))
		}},
		{"delete a document", func() error { return writer.DeleteDocument(ctx, "ops", "backup") }},
		{"move a chunk to another knowledge base", func() error {
			c := chunk("ops", "moved", 0, "Rotate secrets with the gateway token.")
			c.ID = knowledge.ChunkID("discord", 0) // the id of a chunk in docs
			return writer.Upsert(ctx, []knowledge.Chunk{c})
		}},
		{"delete a knowledge base", func() error { return writer.DeleteKnowledgeBase(ctx, "docs") }},
		{"write it again", func() error {
			return writer.Upsert(ctx, doc("docs", "again", "Backup nightly, token scopes, retention policy."))
		}},
	}
	for _, s := range steps {
		if err := s.write(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		mustSame(t, s.name, reader, path)
	}

	// The change log keeps an hour: age every entry, and let an index that
	// has not pruned yet write. The reader, older than the pruned log,
	// loads again.
	if err := writer.DeleteDocument(ctx, "ops", "moved"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE chunk_log SET created = 0`); err != nil {
		t.Fatal(err)
	}
	pruner := MustOpenPath(t, path)
	indextest.MustUpsert(t, pruner, doc("ops", "late", "Gateway shards rotate secrets nightly."))
	var logged, floor int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM chunk_log), (SELECT log_floor FROM kb_versions WHERE knowledge_base = 'ops')`).Scan(&logged, &floor); err != nil {
		t.Fatal(err)
	}
	if logged != 0 || floor == 0 {
		t.Fatalf("after pruning: %d log entries, ops log_floor %d; want 0 and above 0", logged, floor)
	}
	mustSame(t, "pruned change log", reader, path)
}

// TestCompaction deletes most of a knowledge base: the postings of the
// deleted chunks are dropped by a reload, and ranking stays exact.
func TestCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix := MustOpenPath(t, path)
	var chunks []knowledge.Chunk
	for i := range 1500 {
		chunks = append(chunks, chunk("docs", fmt.Sprintf("d%d", i), 0, fmt.Sprintf("Token scopes note %d, gateway shard %d.", i, i%7)))
	}
	indextest.MustUpsert(t, ix, chunks)
	indextest.MustSearch(t, ix, knowledge.Query{Text: "token"})
	for i := range 1200 {
		if err := ix.DeleteDocument(context.Background(), "docs", fmt.Sprintf("d%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	mustSame(t, "after deleting 1200 of 1500", ix, path)
	if got := indextest.MustSearch(t, ix, knowledge.Query{Text: "token", Limit: 1000}); len(got) != 300 {
		t.Errorf("Search(token) found %d chunks, want the 300 left", len(got))
	}
}

// TestWarm loads every knowledge base ahead of the first search.
func TestWarm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	if err := MustOpenPath(t, path).Warm(context.Background()); err != nil {
		t.Fatalf("Warm on an empty index: %v", err)
	}
	indextest.MustUpsert(t, MustOpenPath(t, path), []knowledge.Chunk{chunk("docs", "d1", 0, "Token scopes."), chunk("ops", "d2", 0, "Backups.")})
	warm := MustOpenPath(t, path)
	if err := warm.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustSame(t, "warmed", warm, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := MustOpenPath(t, path).Warm(ctx); err == nil {
		t.Error("Warm with a canceled context succeeded")
	}
}
