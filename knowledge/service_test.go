package knowledge_test

import (
	"bytes"
	"context"
	"errors"
	"os"
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

// MustOpenIndex opens an embedded index in a new file under tb.TempDir.
func MustOpenIndex(tb testing.TB) *embedded.Index {
	tb.Helper()
	return mustOpenIndexAt(tb, filepath.Join(tb.TempDir(), "index.db"))
}

func mustOpenIndexAt(tb testing.TB, path string) *embedded.Index {
	tb.Helper()
	ix, err := embedded.Open(context.Background(), embedded.Config{Path: path})
	if err != nil {
		tb.Fatalf("open index: %v", err)
	}
	tb.Cleanup(func() { _ = ix.Close() })
	return ix
}

// fixture is a service over an in-memory store and a real index, with the
// knowledge bases "docs" and "other".
type fixture struct {
	svc   *knowledge.Service
	store *memStore
	index *flakyIndex
}

// MustService returns a fixture with cfg.
func MustService(tb testing.TB, cfg knowledge.Config) *fixture {
	tb.Helper()
	store := newMemStore()
	for _, name := range []string{"docs", "other"} {
		if err := store.CreateKnowledgeBase(context.Background(), &engine.KnowledgeBase{Name: name}); err != nil {
			tb.Fatal(err)
		}
	}
	ix := &flakyIndex{Index: MustOpenIndex(tb)}
	return &fixture{svc: mustNew(tb, cfg, store, ix), store: store, index: ix}
}

func mustNew(tb testing.TB, cfg knowledge.Config, store engine.KnowledgeStore, ix knowledge.Index) *knowledge.Service {
	tb.Helper()
	svc, err := knowledge.New(cfg, knowledge.Deps{Store: store, Index: ix})
	if err != nil {
		tb.Fatalf("knowledge.New: %v", err)
	}
	return svc
}

// MustIngest ingests or fails the test.
func (f *fixture) MustIngest(tb testing.TB, kb, source, content string) *engine.Document {
	tb.Helper()
	doc, err := f.svc.Ingest(context.Background(), kb, source, []byte(content))
	if err != nil {
		tb.Fatalf("Ingest(%s, %s): %v", kb, source, err)
	}
	return doc
}

// MustRetrieve retrieves or fails the test.
func (f *fixture) MustRetrieve(tb testing.TB, query string, kbs ...string) []engine.Passage {
	tb.Helper()
	res, err := f.svc.Retrieve(context.Background(), engine.RetrievalRequest{Query: query, KnowledgeBases: kbs})
	if err != nil {
		tb.Fatalf("Retrieve(%q): %v", query, err)
	}
	return res.Passages
}

// flakyIndex is an index whose Upsert can be made to fail after writing
// part of its chunks, as a backend that dies mid-request would.
type flakyIndex struct {
	knowledge.Index
	mu      sync.Mutex
	fail    error
	upserts int
}

func (f *flakyIndex) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *flakyIndex) Upsert(ctx context.Context, chunks []knowledge.Chunk) error {
	f.mu.Lock()
	fail := f.fail
	f.upserts++
	f.mu.Unlock()
	if fail != nil {
		if err := f.Index.Upsert(ctx, chunks[:(len(chunks)+1)/2]); err != nil {
			return err
		}
		return fail
	}
	return f.Index.Upsert(ctx, chunks)
}

func (f *flakyIndex) upsertCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upserts
}

func docChunks(tb testing.TB, ix knowledge.Index, kb, docID string) int {
	tb.Helper()
	return indextest.MustDocuments(tb, ix, kb)[kb+"/"+docID]
}

const slackGuide = `# Slack

## Create the app

Create a Slack app and enable Socket Mode.

## Connect

Paste the tokens into the console to connect Slack.
`

func TestNewValidates(t *testing.T) {
	store, ix := newMemStore(), MustOpenIndex(t)
	tests := []struct {
		name string
		cfg  knowledge.Config
		deps knowledge.Deps
	}{
		{"no store", knowledge.Config{}, knowledge.Deps{Index: ix}},
		{"no index", knowledge.Config{}, knowledge.Deps{Store: store}},
		{"tiny chunks", knowledge.Config{ChunkSize: 10}, knowledge.Deps{Store: store, Index: ix}},
		{"overlap too big", knowledge.Config{ChunkSize: 200, ChunkOverlap: 150}, knowledge.Deps{Store: store, Index: ix}},
		{"negative max bytes", knowledge.Config{MaxFileBytes: -1}, knowledge.Deps{Store: store, Index: ix}},
		{"default above max", knowledge.Config{DefaultLimit: 20, MaxLimit: 10}, knowledge.Deps{Store: store, Index: ix}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := knowledge.New(tt.cfg, tt.deps); engine.ErrorCode(err) != engine.EINVALID {
				t.Errorf("New = %v, want an EINVALID error", err)
			}
		})
	}
	if _, err := knowledge.New(knowledge.Config{}, knowledge.Deps{Store: store, Index: ix}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func TestIngest(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	doc := f.MustIngest(t, "docs", `setup\slack.md`, slackGuide)
	if doc.ID == "" || doc.Source != "setup/slack.md" || doc.Title != "Slack" || doc.ContentType != knowledge.ContentTypeMarkdown ||
		doc.Status != engine.DocumentIndexed || doc.Chunks != 2 || doc.Size != int64(len(slackGuide)) || len(doc.SHA256) != 64 {
		t.Errorf("document = %+v", doc)
	}
	stored, err := f.store.DocumentByID(context.Background(), doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Content) != slackGuide || stored.Status != engine.DocumentIndexed || stored.Chunks != 2 || stored.Error != "" {
		t.Errorf("stored document = %+v", stored)
	}
	if n := docChunks(t, f.index, "docs", doc.ID); n != 2 {
		t.Errorf("index holds %d chunks, want 2", n)
	}
	ps := f.MustRetrieve(t, "How do I connect Slack?", "docs")
	if len(ps) == 0 || ps[0].ID != knowledge.ChunkID(doc.ID, 1) || ps[0].Document != "setup/slack.md" ||
		!slices.Equal(ps[0].HeadingPath, []string{"Slack", "Connect"}) || ps[0].Title != "Slack" {
		t.Errorf("Retrieve = %+v", ps)
	}
}

func TestIngestUnchangedIsSkipped(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	first := f.MustIngest(t, "docs", "slack.md", slackGuide)
	before := f.index.upsertCount()
	again := f.MustIngest(t, "docs", "slack.md", slackGuide)
	if f.index.upsertCount() != before {
		t.Error("unchanged document was indexed again")
	}
	if again.ID != first.ID || again.Status != engine.DocumentIndexed || again.Chunks != 2 || again.Content != nil {
		t.Errorf("second ingest = %+v", again)
	}
	// The same content in another knowledge base is another document.
	other := f.MustIngest(t, "other", "slack.md", slackGuide)
	if other.ID == first.ID || f.index.upsertCount() != before+1 {
		t.Errorf("ingest into another knowledge base: id %s, upserts %d", other.ID, f.index.upsertCount())
	}
}

func TestIngestReplaces(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	first := f.MustIngest(t, "docs", "slack.md", slackGuide)
	second := f.MustIngest(t, "docs", "slack.md", "# Slack\n\nThe setup wizard does everything now.\n")
	if second.ID != first.ID || second.Chunks != 1 || second.Title != "Slack" {
		t.Errorf("replaced document = %+v", second)
	}
	if n := docChunks(t, f.index, "docs", first.ID); n != 1 {
		t.Errorf("index holds %d chunks, want 1", n)
	}
	if ps := f.MustRetrieve(t, "socket mode tokens"); len(ps) != 0 {
		t.Errorf("old text still found: %+v", ps)
	}
	if ps := f.MustRetrieve(t, "wizard"); len(ps) != 1 {
		t.Errorf("new text not found: %+v", ps)
	}
}

func TestIngestRejects(t *testing.T) {
	f := MustService(t, knowledge.Config{MaxFileBytes: 1000})
	tests := []struct {
		name, kb, source, content string
		code, msgHas              string
	}{
		{"too large", "docs", "big.md", strings.Repeat("a", 1001), engine.ETOOLARGE, "big.md is 1001 bytes, over the limit of 1000"},
		{"empty", "docs", "empty.md", "", engine.EINVALID, "empty.md is empty"},
		{"blank", "docs", "blank.md", "  \n\n\t\n", engine.EINVALID, "blank.md: document is empty"},
		{"binary", "docs", "logo.md", "\x89PNG\r\n\x1a\n\x00\x00", engine.EINVALID, "logo.md: unsupported file type: it is a PNG image"},
		{"pdf", "docs", "manual.pdf", "%PDF-1.4 ...", engine.EINVALID, "manual.pdf: the PDF cannot be read"},
		{"no name", "docs", "  ", "text", engine.EINVALID, "no name"},
		{"control in name", "docs", "a\x07.md", "text", engine.EINVALID, "control characters"},
		{"long name", "docs", strings.Repeat("n", 1100) + ".md", "text", engine.EINVALID, "bytes long"},
		{"unknown knowledge base", "nope", "a.md", "text", engine.ENOTFOUND, `"nope" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := f.svc.Ingest(context.Background(), tt.kb, tt.source, []byte(tt.content))
			if doc != nil || engine.ErrorCode(err) != tt.code || !strings.Contains(engine.ErrorMessage(err), tt.msgHas) {
				t.Errorf("Ingest = %v, %v (%s); want code %s saying %q", doc, err, engine.ErrorMessage(err), tt.code, tt.msgHas)
			}
		})
	}
	// Nothing was stored.
	for _, kb := range []string{"docs", "other"} {
		if docs, _ := f.store.ListDocuments(context.Background(), kb); len(docs) != 0 {
			t.Errorf("rejected documents were stored in %s: %v", kb, docs)
		}
	}
}

func TestIngestIndexFailure(t *testing.T) {
	f := MustService(t, knowledge.Config{ChunkSize: 100, ChunkOverlap: -1})
	ctx := context.Background()
	good := f.MustIngest(t, "docs", "slack.md", slackGuide)

	f.index.setFail(errors.New("connection reset by peer"))
	long := "# Ops\n\n" + strings.Repeat("Back up the index file every night, and keep copies. ", 10)
	doc, err := f.svc.Ingest(ctx, "docs", "ops.md", []byte(long))
	if engine.ErrorCode(err) != engine.EUNAVAILABLE || !strings.Contains(engine.ErrorMessage(err), "Indexing ops.md failed") {
		t.Fatalf("Ingest = %v (%s), want EUNAVAILABLE naming the file", err, engine.ErrorMessage(err))
	}
	if doc == nil || doc.Status != engine.DocumentFailed || doc.Error == "" || doc.Chunks != 0 {
		t.Errorf("returned document = %+v, want failed with a reason", doc)
	}
	stored, err := f.store.DocumentBySource(ctx, "docs", "ops.md")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != engine.DocumentFailed || !strings.Contains(stored.Error, "unavailable") || string(stored.Content) != long {
		t.Errorf("stored document = %+v, want failed with its original kept", stored)
	}
	if n := docChunks(t, f.index, "docs", stored.ID); n != 0 {
		t.Errorf("failed document left %d chunks in the index", n)
	}
	// Re-ingesting a changed, indexed document that fails leaves nothing of it.
	_, err = f.svc.Ingest(ctx, "docs", "slack.md", []byte(slackGuide+"\nMore text.\n"))
	if err == nil {
		t.Fatal("Ingest succeeded while the index fails")
	}
	if n := docChunks(t, f.index, "docs", good.ID); n != 0 {
		t.Errorf("failed replacement left %d chunks", n)
	}

	// Once the index is back, the same content is indexed (failed is not "unchanged").
	f.index.setFail(nil)
	doc = f.MustIngest(t, "docs", "ops.md", long)
	if doc.Status != engine.DocumentIndexed || doc.Chunks < 2 || docChunks(t, f.index, "docs", doc.ID) != doc.Chunks {
		t.Errorf("after recovery document = %+v", doc)
	}
}

func TestIngestCanceled(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	f.index.setFail(context.Canceled)
	defer cancel()
	_, err := f.svc.Ingest(ctx, "docs", "a.md", []byte("# A\n\ntext\n"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Ingest = %v, want context.Canceled in the chain", err)
	}
	d, _ := f.store.DocumentBySource(context.Background(), "docs", "a.md")
	if d == nil || d.Status != engine.DocumentFailed || !strings.Contains(d.Error, "interrupted") {
		t.Errorf("stored document = %+v, want failed as interrupted", d)
	}
}

func TestDeleteDocument(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	ctx := context.Background()
	slack := f.MustIngest(t, "docs", "slack.md", slackGuide)
	other := f.MustIngest(t, "docs", "discord.md", "# Discord\n\nRegister the slash command.\n")
	if err := f.svc.DeleteDocument(ctx, slack.ID); err != nil {
		t.Fatalf("DeleteDocument: %v", err)
	}
	if _, err := f.store.DocumentByID(ctx, slack.ID); !engine.IsNotFound(err) {
		t.Errorf("document still stored: %v", err)
	}
	if ps := f.MustRetrieve(t, "slack"); len(ps) != 0 {
		t.Errorf("deleted document still found: %+v", ps)
	}
	if n := docChunks(t, f.index, "docs", other.ID); n != 1 {
		t.Errorf("other document has %d chunks", n)
	}
	if err := f.svc.DeleteDocument(ctx, slack.ID); !engine.IsNotFound(err) {
		t.Errorf("second delete = %v, want ENOTFOUND", err)
	}
}

func TestDeleteKnowledgeBase(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	ctx := context.Background()
	f.MustIngest(t, "other", "slack.md", slackGuide)
	f.MustIngest(t, "docs", "slack.md", slackGuide)
	if err := f.svc.DeleteKnowledgeBase(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.KnowledgeBaseByName(ctx, "other"); !engine.IsNotFound(err) {
		t.Errorf("knowledge base still stored: %v", err)
	}
	if docs := indextest.MustDocuments(t, f.index, "other"); len(docs) != 0 {
		t.Errorf("index still holds %v", docs)
	}
	if ps := f.MustRetrieve(t, "slack"); len(ps) == 0 || ps[0].KnowledgeBase != "docs" {
		t.Errorf("Retrieve = %+v, want docs untouched", ps)
	}
	if err := f.svc.DeleteKnowledgeBase(ctx, "other"); !engine.IsNotFound(err) {
		t.Errorf("second delete = %v, want ENOTFOUND", err)
	}
}

func TestRetrieve(t *testing.T) {
	f := MustService(t, knowledge.Config{DefaultLimit: 2, MaxLimit: 3})
	ctx := context.Background()
	for _, src := range []string{"a.md", "b.md", "c.md", "d.md", "e.md"} {
		f.MustIngest(t, "docs", src, "# Bot "+src+"\n\nThe bot answers in channels ("+src+").\n")
	}
	f.MustIngest(t, "other", "x.md", "# Other\n\nThe bot lives here too.\n")

	tests := []struct {
		name string
		req  engine.RetrievalRequest
		want int // passages, or -1 for an EINVALID error
	}{
		{"default limit", engine.RetrievalRequest{Query: "bot", KnowledgeBases: []string{"docs"}}, 2},
		{"limit", engine.RetrievalRequest{Query: "bot", KnowledgeBases: []string{"docs"}, Settings: engine.RetrievalSettings{Limit: 1}}, 1},
		{"capped limit", engine.RetrievalRequest{Query: "bot", KnowledgeBases: []string{"docs"}, Settings: engine.RetrievalSettings{Limit: 50}}, 3},
		{"all knowledge bases", engine.RetrievalRequest{Query: "lives", Settings: engine.RetrievalSettings{Limit: 3}}, 1},
		{"unknown knowledge base", engine.RetrievalRequest{Query: "bot", KnowledgeBases: []string{"missing"}}, 0},
		{"duplicate knowledge bases", engine.RetrievalRequest{Query: "lives", KnowledgeBases: []string{"other", "other"}}, 1},
		{"min score 1", engine.RetrievalRequest{Query: "bot", Settings: engine.RetrievalSettings{MinScore: 1}}, 0},
		{"stopwords only", engine.RetrievalRequest{Query: "how do I"}, 0},
		{"empty", engine.RetrievalRequest{Query: "  \n"}, -1},
		{"nul", engine.RetrievalRequest{Query: "bot\x00"}, -1},
		{"invalid utf8", engine.RetrievalRequest{Query: "bot \xff"}, -1},
		{"negative min score", engine.RetrievalRequest{Query: "bot", Settings: engine.RetrievalSettings{MinScore: -0.5}}, -1},
		{"min score above 1", engine.RetrievalRequest{Query: "bot", Settings: engine.RetrievalSettings{MinScore: 2}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := f.svc.Retrieve(ctx, tt.req)
			if tt.want < 0 {
				if engine.ErrorCode(err) != engine.EINVALID {
					t.Errorf("Retrieve = %v, %v; want EINVALID", res, err)
				}
				return
			}
			if err != nil || res.Passages == nil || len(res.Passages) != tt.want {
				t.Fatalf("Retrieve = %+v, %v; want %d passages", res, err, tt.want)
			}
			if res.Applied.Limit == 0 || res.Applied.Mode != engine.SearchLexical || res.Applied.MinScore != tt.req.Settings.MinScore {
				t.Errorf("applied settings = %+v", res.Applied)
			}
		})
	}
}

func TestReindex(t *testing.T) {
	ctx := context.Background()
	f := MustService(t, knowledge.Config{})
	long := "# Ops\n\n" + strings.Repeat("Back up the index file every night and keep the copies somewhere safe. ", 12)
	ops := f.MustIngest(t, "docs", "ops.md", long)
	slack := f.MustIngest(t, "docs", "slack.md", slackGuide)
	if ops.Chunks != 1 {
		t.Fatalf("ops has %d chunks with the default size", ops.Chunks)
	}
	// An orphan: chunks of a document the store does not have.
	indextest.MustUpsert(t, f.index, []knowledge.Chunk{{ID: "ghost:0", KnowledgeBase: "docs", DocumentID: "ghost", Text: "ghost slack"}})

	// Smaller chunks: a reindex re-cuts the stored originals.
	svc := mustNew(t, knowledge.Config{ChunkSize: 200, ChunkOverlap: -1}, f.store, f.index)
	report, err := svc.Reindex(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if len(report.OK) != 2 || len(report.Failed) != 0 {
		t.Errorf("report = %+v", report)
	}
	docs := indextest.MustDocuments(t, f.index, "docs")
	stored, _ := f.store.DocumentByID(ctx, ops.ID)
	if docs["docs/"+ops.ID] < 4 || docs["docs/"+ops.ID] != stored.Chunks || stored.Status != engine.DocumentIndexed {
		t.Errorf("ops after reindex: index %d chunks, stored %+v", docs["docs/"+ops.ID], stored)
	}
	if docs["docs/"+slack.ID] != 2 {
		t.Errorf("slack after reindex: %d chunks", docs["docs/"+slack.ID])
	}
	if _, ok := docs["docs/ghost"]; ok {
		t.Error("reindex kept the orphan chunks")
	}
	if _, err := svc.Reindex(ctx, "missing"); !engine.IsNotFound(err) {
		t.Errorf("Reindex(missing) = %v, want ENOTFOUND", err)
	}
}

// TestSync is the start-up case: the store has documents and the index
// file is new (or behind).
func TestSync(t *testing.T) {
	ctx := context.Background()
	f := MustService(t, knowledge.Config{})
	slack := f.MustIngest(t, "docs", "slack.md", slackGuide)
	other := f.MustIngest(t, "other", "notes.txt", "Keep Slack threads short.\n")
	f.index.setFail(errors.New("down"))
	if _, err := f.svc.Ingest(ctx, "docs", "failed.md", []byte("# Failed\n\ntext\n")); err == nil {
		t.Fatal("Ingest succeeded while the index fails")
	}
	// A pending document: stored, but the process stopped before indexing.
	pending := &engine.Document{KnowledgeBase: "docs", Source: "pending.md", ContentType: knowledge.ContentTypeMarkdown,
		Content: []byte("# Pending\n\nInterrupted before indexing.\n"), Status: engine.DocumentPending}
	if err := f.store.SaveDocument(ctx, pending); err != nil {
		t.Fatal(err)
	}

	fresh := &flakyIndex{Index: MustOpenIndex(t)}
	// Leftovers the store no longer knows: a document and a knowledge base.
	indextest.MustUpsert(t, fresh, []knowledge.Chunk{
		{ID: "gone:0", KnowledgeBase: "docs", DocumentID: "gone", Text: "slack"},
		{ID: "old:0", KnowledgeBase: "deleted-kb", DocumentID: "old", Text: "slack"},
	})
	svc := mustNew(t, knowledge.Config{}, f.store, fresh)
	if err := svc.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	want := map[string]int{
		"docs/" + slack.ID:   2,
		"docs/" + pending.ID: 1,
		"other/" + other.ID:  1,
	}
	if got := indextest.MustDocuments(t, fresh, ""); !maps(got, want) {
		t.Errorf("index after Sync = %v, want %v", got, want)
	}
	if d, _ := f.store.DocumentByID(ctx, pending.ID); d.Status != engine.DocumentIndexed || d.Chunks != 1 {
		t.Errorf("pending document after Sync = %+v", d)
	}
	if d, _ := f.store.DocumentBySource(ctx, "docs", "failed.md"); d.Status != engine.DocumentFailed {
		t.Errorf("failed document after Sync = %+v, want left failed", d)
	}
	res, err := svc.Retrieve(ctx, engine.RetrievalRequest{Query: "How do I connect Slack?", KnowledgeBases: []string{"docs"}})
	if err != nil || len(res.Passages) == 0 || res.Passages[0].DocumentID != slack.ID {
		t.Errorf("Retrieve after Sync = %+v, %v", res, err)
	}

	// In sync: a second Sync indexes nothing.
	before := fresh.upsertCount()
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if fresh.upsertCount() != before {
		t.Errorf("second Sync upserted %d times", fresh.upsertCount()-before)
	}
}

func maps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestConcurrentIngestOfOneDocument(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			content := slackGuide + strings.Repeat("\nVersion line.\n", i)
			if _, err := f.svc.Ingest(context.Background(), "docs", "slack.md", []byte(content)); err != nil {
				t.Errorf("Ingest %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	d, err := f.store.DocumentBySource(context.Background(), "docs", "slack.md")
	if err != nil {
		t.Fatal(err)
	}
	if docs := indextest.MustDocuments(t, f.index, "docs"); len(docs) != 1 || docs["docs/"+d.ID] != d.Chunks {
		t.Errorf("index = %v, store says %d chunks", docs, d.Chunks)
	}
}

// writeTree writes files (path → content) under a new temporary directory.
func writeTree(tb testing.TB, files map[string]string) string {
	tb.Helper()
	root := tb.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func sources(rs []knowledge.IngestResult) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Source)
	}
	return out
}

func TestIngestPath(t *testing.T) {
	ctx := context.Background()
	f := MustService(t, knowledge.Config{MaxFileBytes: 2000})
	root := writeTree(t, map[string]string{
		"slack.md":               slackGuide,
		"setup/discord.markdown": "# Discord\n\nRegister the slash command.\n",
		"notes.TXT":              "Plain notes.\n",
		"broken.md":              "\x00\x01binary",
		"huge.md":                strings.Repeat("x", 2001),
		"logo.png":               "\x89PNG",
		".git/config.md":         "# hidden dir\n",
		"setup/.draft.md":        "# hidden file\n",
		"empty.txt":              "",
	})
	var progress []knowledge.IngestProgress
	report, err := f.svc.IngestPath(ctx, "docs", root, func(p knowledge.IngestProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatalf("IngestPath: %v", err)
	}
	if got, want := sources(report.OK), []string{"notes.TXT", "setup/discord.markdown", "slack.md"}; !slices.Equal(got, want) {
		t.Errorf("ok = %q, want %q", got, want)
	}
	if got, want := sources(report.Skipped), []string{"logo.png"}; !slices.Equal(got, want) {
		t.Errorf("skipped = %q, want %q", got, want)
	}
	if got, want := sources(report.Failed), []string{"broken.md", "empty.txt", "huge.md"}; !slices.Equal(got, want) {
		t.Errorf("failed = %q, want %q", got, want)
	}
	reasons := map[string]string{}
	for _, r := range append(report.Failed, report.Skipped...) {
		reasons[r.Source] = r.Reason
		if r.Reason == "" {
			t.Errorf("%s has no reason", r.Source)
		}
	}
	for src, has := range map[string]string{"broken.md": "unsupported file type", "huge.md": "over the limit", "empty.txt": "empty", "logo.png": "not a document type that is ingested"} {
		if !strings.Contains(reasons[src], has) {
			t.Errorf("reason for %s = %q, want it to say %q", src, reasons[src], has)
		}
	}
	for _, r := range report.OK {
		if r.DocumentID == "" || r.Chunks == 0 || r.Path == "" {
			t.Errorf("ok result = %+v", r)
		}
	}
	if len(progress) != 7 || progress[6].Done != 7 || progress[6].Total != 7 {
		t.Errorf("progress = %+v, want 7 reports ending at 7/7", progress)
	}
	for i, p := range progress {
		if p.Done != i+1 || p.Outcome == "" || p.Result.Source == "" {
			t.Errorf("progress %d = %+v", i, p)
		}
	}

	// Running it again skips the unchanged files and retries the failed ones.
	report, err = f.svc.IngestPath(ctx, "docs", root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.OK) != 0 || len(report.Skipped) != 4 || len(report.Failed) != 3 {
		t.Errorf("second run: ok %q skipped %q failed %q", sources(report.OK), sources(report.Skipped), sources(report.Failed))
	}
	for _, r := range report.Skipped {
		if r.Source != "logo.png" && (r.Reason != "unchanged since it was last indexed" || r.DocumentID == "" || r.Chunks == 0) {
			t.Errorf("skipped = %+v", r)
		}
	}

	// A single file is named by its file name.
	report, err = f.svc.IngestPath(ctx, "other", filepath.Join(root, "setup", "discord.markdown"), nil)
	if err != nil || !slices.Equal(sources(report.OK), []string{"discord.markdown"}) {
		t.Errorf("single file: %+v, %v", report, err)
	}
}

func TestIngestPathErrors(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	ctx := context.Background()
	root := writeTree(t, map[string]string{"a.md": "# A\n\ntext\n"})
	if _, err := f.svc.IngestPath(ctx, "docs", filepath.Join(root, "missing"), nil); !engine.IsNotFound(err) {
		t.Errorf("missing path = %v, want ENOTFOUND", err)
	}
	if _, err := f.svc.IngestPath(ctx, "missing", root, nil); !engine.IsNotFound(err) {
		t.Errorf("missing knowledge base = %v, want ENOTFOUND", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.svc.IngestPath(canceled, "docs", root, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled = %v, want context.Canceled", err)
	}
}

// TestAcceptanceDocsDirectory ingests the Markdown pages of testdata/docs
// and asks the question a new user asks.
func TestAcceptanceDocsDirectory(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	report, err := f.svc.IngestPath(context.Background(), "docs", filepath.Join("testdata", "docs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"configuration.md", "faq.txt", "index.md", "setup/discord.md", "setup/mattermost.md", "setup/slack.md"}
	if got := sources(report.OK); !slices.Equal(got, want) || len(report.Failed) != 0 {
		t.Fatalf("ingested %q (failed %+v), want %q", got, report.Failed, want)
	}
	ps := f.MustRetrieve(t, "How do I connect Slack?", "docs")
	if len(ps) == 0 {
		t.Fatal("no passages")
	}
	top := ps[0]
	if top.Document != "setup/slack.md" || top.Title != "Slack setup" ||
		!slices.Equal(top.HeadingPath, []string{"Slack", "Connect Slack to ConvoSphere"}) ||
		!strings.Contains(top.Text, "press **Connect**") {
		t.Errorf("top passage = %s %q %q\n%s", top.Document, top.Title, top.HeadingPath, top.Text)
	}
	for q, doc := range map[string]string{
		"register the discord slash command":     "setup/discord.md",
		"mattermost bot access token":            "setup/mattermost.md",
		"Can assistants share a knowledge base?": "faq.txt",
		"openai compatible endpoint":             "configuration.md",
	} {
		if ps := f.MustRetrieve(t, q, "docs"); len(ps) == 0 || ps[0].Document != doc {
			t.Errorf("Retrieve(%q) top = %+v, want %s", q, ps, doc)
		}
	}
}

// TestStatusFailureIsRepairedBySync: the index took the chunks but the
// store could not record it; the document stays pending and Sync finishes it.
func TestStatusFailureIsRepairedBySync(t *testing.T) {
	ctx := context.Background()
	f := MustService(t, knowledge.Config{})
	f.store.mu.Lock()
	f.store.failSetStatus = errors.New("disk full")
	f.store.mu.Unlock()
	if _, err := f.svc.Ingest(ctx, "docs", "slack.md", []byte(slackGuide)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Ingest = %v, want the store's error", err)
	}
	f.store.mu.Lock()
	f.store.failSetStatus = nil
	f.store.mu.Unlock()
	d, err := f.store.DocumentBySource(ctx, "docs", "slack.md")
	if err != nil || d.Status != engine.DocumentPending {
		t.Fatalf("stored = %+v, %v; want pending", d, err)
	}
	if err := f.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ = f.store.DocumentByID(ctx, d.ID); d.Status != engine.DocumentIndexed || d.Chunks != 2 {
		t.Errorf("after Sync = %+v", d)
	}
}

// TestIngestRichFormats ingests HTML and DOCX files (their type decided by
// content, whatever the name says) and finds their sections with headings.
func TestIngestRichFormats(t *testing.T) {
	f := MustService(t, knowledge.Config{})
	ctx := context.Background()
	tests := []struct {
		fixture, source, wantType string
	}{
		{"runbook.html", "runbook.html", "text/html"},
		{"runbook.docx", "runbook.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"runbook.html", "mislabelled.txt", "text/html"},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			content, err := os.ReadFile(filepath.Join("extract", "testdata", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			doc, err := f.svc.Ingest(ctx, "docs", tt.source, content)
			if err != nil {
				t.Fatal(err)
			}
			if doc.ContentType != tt.wantType || doc.Status != engine.DocumentIndexed || doc.Chunks == 0 {
				t.Fatalf("document = %+v", doc)
			}
			if doc.Title != "Runbook for the Chat Bot" {
				t.Errorf("title = %q", doc.Title)
			}
			stored, err := f.store.DocumentByID(ctx, doc.ID)
			if err != nil || !bytes.Equal(stored.Content, content) {
				t.Fatalf("the original was not kept: %v", err)
			}
		})
	}
	var found bool
	for _, p := range f.MustRetrieve(t, "timeout per file settings", "docs") {
		found = found || (strings.Contains(p.Text, "timeout") && slices.Contains(p.HeadingPath, "Settings"))
	}
	if !found {
		t.Error("the Settings section of the rich documents was not found with its heading")
	}
}

// TestChunks: a document's chunks, as cut for the index, with the ids
// citations carry.
func TestChunks(t *testing.T) {
	ctx := context.Background()
	f := MustService(t, knowledge.Config{})
	doc := f.MustIngest(t, "docs", "slack.md", slackGuide)
	got, chunks, err := f.svc.Chunks(ctx, doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != doc.ID || got.Content != nil || len(chunks) != doc.Chunks {
		t.Fatalf("Chunks = %+v with %d chunks, want the document (no content) and its %d chunks", got, len(chunks), doc.Chunks)
	}
	passages := indextest.MustSearch(t, f.index, knowledge.Query{Text: "connect slack", KnowledgeBases: []string{"docs"}, Limit: 10})
	for _, p := range passages {
		found := false
		for _, c := range chunks {
			found = found || c.ID == p.ID && c.Text == p.Text && c.Position == p.Position
		}
		if !found {
			t.Errorf("indexed chunk %s is not among the document's chunks", p.ID)
		}
	}
	if _, _, err := f.svc.Chunks(ctx, "missing"); !engine.IsNotFound(err) {
		t.Errorf("Chunks(missing) = %v, want not found", err)
	}
}
