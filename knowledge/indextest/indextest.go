// Package indextest is the conformance suite of knowledge.Index: every
// implementation (the embedded SQLite index, Weaviate) runs Run from its own
// tests and must pass it unchanged.
package indextest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// Run runs the suite. open returns a new, empty index for each subtest and
// arranges for it to be closed (tb.Cleanup).
func Run(t *testing.T, open func(tb testing.TB) knowledge.Index) {
	tests := []struct {
		name string
		run  func(t *testing.T, ix knowledge.Index)
	}{
		{"SearchReturnsChunkFields", testFields},
		{"UpsertReplacesDocument", testReplace},
		{"UpsertSeveralDocuments", testSeveralDocuments},
		{"UpsertRejectsIncompleteChunks", testInvalidChunks},
		{"DeleteDocument", testDeleteDocument},
		{"DeleteKnowledgeBase", testDeleteKnowledgeBase},
		{"Documents", testDocuments},
		{"KnowledgeBaseFilter", testFilter},
		{"Ranking", testRanking},
		{"Limit", testLimit},
		{"MinScore", testMinScore},
		{"NoMatch", testNoMatch},
		{"HostileQueries", testHostile},
		{"Concurrent", testConcurrent},
		{"VectorFindsMeaning", testVectorFindsMeaning},
		{"VectorScores", testVectorScores},
		{"VectorKnowledgeBaseFilter", testVectorFilter},
		{"VectorFollowsWrites", testVectorFollowsWrites},
		{"ChunksWithoutVectors", testChunksWithoutVectors},
		{"HybridBeatsSingleModes", testHybridBeatsSingleModes},
		{"RRFK", testRRFK},
		{"AlphaExtremes", testAlphaExtremes},
		{"HybridMinScore", testHybridMinScore},
		{"Dimensions", testDimensions},
		{"InvalidQueries", testInvalidQueries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, open(t))
		})
	}
}

// doc is a document of the test corpus.
type doc struct {
	kb, id, source, title string
	sections              []section
}

type section struct {
	path []string
	text string
}

func (d doc) chunks() []knowledge.Chunk {
	out := make([]knowledge.Chunk, len(d.sections))
	for i, s := range d.sections {
		out[i] = knowledge.Chunk{
			ID:            knowledge.ChunkID(d.id, i),
			KnowledgeBase: d.kb,
			DocumentID:    d.id,
			Document:      d.source,
			Title:         d.title,
			HeadingPath:   s.path,
			Position:      i,
			Text:          s.text,
		}
	}
	return out
}

// corpus is a small documentation set: setup guides for three platforms
// and a few other topics, plus a second knowledge base.
var corpus = []doc{
	{kb: "docs", id: "doc-slack", source: "setup/slack.md", title: "Slack", sections: []section{
		{[]string{"Slack"}, "# Slack\n\nConvoSphere answers in Slack channels, direct messages and threads."},
		{[]string{"Slack", "Connect Slack"}, "## Connect Slack\n\nTo connect Slack, create a Slack app, enable Socket Mode, add the bot token scopes chat:write and app_mentions:read, and install the app to your workspace. Paste the bot token into the console."},
		{[]string{"Slack", "Troubleshooting"}, "## Troubleshooting\n\nIf the bot does not answer in a channel, invite it with /invite. Events that are not acknowledged within three seconds are retried."},
	}},
	{kb: "docs", id: "doc-discord", source: "setup/discord.md", title: "Discord", sections: []section{
		{[]string{"Discord", "Connect Discord"}, "## Connect Discord\n\nCreate an application in the Discord developer portal, add a bot, and register the /ask slash command. Invite the bot to your server with the applications.commands scope."},
		{[]string{"Discord", "Permissions"}, "## Permissions\n\nThe bot needs the Send Messages and Read Message History permissions in each channel."},
	}},
	{kb: "docs", id: "doc-mattermost", source: "setup/mattermost.md", title: "Mattermost", sections: []section{
		{[]string{"Mattermost", "Connect Mattermost"}, "## Connect Mattermost\n\nCreate a bot account in Mattermost, generate an access token, and enter the server URL and the token in the console. The bot answers direct messages."},
	}},
	{kb: "docs", id: "doc-knowledge", source: "knowledge.md", title: "Knowledge bases", sections: []section{
		{[]string{"Knowledge bases"}, "# Knowledge bases\n\nUpload Markdown files to a knowledge base. Assistants search the knowledge bases they are given and cite the passages they use."},
		{[]string{"Knowledge bases", "Reindex"}, "## Reindex\n\nAfter changing the chunk settings, reindex a knowledge base from the console: the stored originals are read again."},
	}},
	{kb: "docs", id: "doc-ops", source: "operations.md", title: "Operations", sections: []section{
		{nil, "Back up the database file and the index file every night. Logs are written as JSON lines to standard error."},
	}},
	{kb: "other", id: "doc-etiquette", source: "etiquette.txt", title: "Chat etiquette", sections: []section{
		{nil, "Keep Slack threads short and use emoji reactions instead of one-word replies."},
	}},
}

func corpusDoc(id string) doc {
	for _, d := range append(slices.Clone(corpus), hybridCorpus...) {
		if d.id == id {
			return d
		}
	}
	panic("indextest: no corpus document " + id)
}

// MustUpsert upserts chunks or fails the test.
func MustUpsert(tb testing.TB, ix knowledge.Index, chunks []knowledge.Chunk) {
	tb.Helper()
	if err := ix.Upsert(context.Background(), chunks); err != nil {
		tb.Fatalf("Upsert: %v", err)
	}
}

// MustSearch searches or fails the test, and checks what every result
// must satisfy: scores in (0, 1], best first, no more than the limit,
// within the requested knowledge bases, with the Scores of the signals
// the mode runs (Score equal to the lexical score in lexical mode, to the
// vector score in vector mode, to the fused score in hybrid mode).
func MustSearch(tb testing.TB, ix knowledge.Index, q knowledge.Query) []engine.Passage {
	tb.Helper()
	got, err := ix.Search(context.Background(), q)
	if err != nil {
		tb.Fatalf("Search(%q): %v", q.Text, err)
	}
	nq, err := q.Normalize()
	if err != nil {
		tb.Fatalf("Search(%q) succeeded, but the query does not normalise: %v", q.Text, err)
	}
	for i, p := range got {
		sc := p.Scores
		var ok bool
		switch nq.Mode {
		case engine.SearchLexical:
			ok = sc.Lexical != nil && *sc.Lexical == p.Score && sc.Vector == nil && sc.Fused == nil
		case engine.SearchVector:
			ok = sc.Vector != nil && *sc.Vector == p.Score && sc.Lexical == nil && sc.Fused == nil
		case engine.SearchHybrid:
			ok = sc.Fused != nil && *sc.Fused == p.Score && (sc.Lexical != nil || sc.Vector != nil)
		}
		if !ok || sc.Rerank != nil {
			tb.Errorf("Search(%q) in %s mode: [%d] %s has score %v and scores %s", q.Text, nq.Mode, i, p.ID, p.Score, scoresString(sc))
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = knowledge.DefaultSearchLimit
	}
	if len(got) > limit {
		tb.Errorf("Search(%q) returned %d passages, over the limit %d", q.Text, len(got), limit)
	}
	for i, p := range got {
		if !(p.Score > 0 && p.Score <= 1) {
			tb.Errorf("Search(%q)[%d] score = %v, want in (0, 1]", q.Text, i, p.Score)
		}
		if i > 0 && p.Score > got[i-1].Score {
			tb.Errorf("Search(%q) not best first: [%d] %v > [%d] %v", q.Text, i, p.Score, i-1, got[i-1].Score)
		}
		if p.Score < q.MinScore {
			tb.Errorf("Search(%q)[%d] score %v below min score %v", q.Text, i, p.Score, q.MinScore)
		}
		if len(q.KnowledgeBases) > 0 && !slices.Contains(q.KnowledgeBases, p.KnowledgeBase) {
			tb.Errorf("Search(%q)[%d] from knowledge base %q, want one of %q", q.Text, i, p.KnowledgeBase, q.KnowledgeBases)
		}
	}
	return got
}

func scoresString(s engine.Scores) string {
	f := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("{lexical %s, vector %s, fused %s, rerank %s}", f(s.Lexical), f(s.Vector), f(s.Fused), f(s.Rerank))
}

// MustDocuments lists indexed documents or fails the test.
func MustDocuments(tb testing.TB, ix knowledge.Index, kb string) map[string]int {
	tb.Helper()
	docs, err := ix.Documents(context.Background(), kb)
	if err != nil {
		tb.Fatalf("Documents(%q): %v", kb, err)
	}
	out := make(map[string]int, len(docs))
	for _, d := range docs {
		if kb != "" && d.KnowledgeBase != kb {
			tb.Errorf("Documents(%q) listed %s of knowledge base %q", kb, d.DocumentID, d.KnowledgeBase)
		}
		out[d.KnowledgeBase+"/"+d.DocumentID] = d.Chunks
	}
	return out
}

func loadCorpus(tb testing.TB, ix knowledge.Index) {
	tb.Helper()
	for _, d := range corpus {
		MustUpsert(tb, ix, d.chunks())
	}
}

func ids(ps []engine.Passage) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func docIDs(ps []engine.Passage) []string {
	var out []string
	for _, p := range ps {
		if !slices.Contains(out, p.DocumentID) {
			out = append(out, p.DocumentID)
		}
	}
	slices.Sort(out)
	return out
}

func testFields(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix)
	want := corpusDoc("doc-slack").chunks()[1]
	got := MustSearch(t, ix, knowledge.Query{Text: "socket mode", KnowledgeBases: []string{"docs"}})
	if len(got) == 0 {
		t.Fatal("no passage for \"socket mode\"")
	}
	p := got[0]
	if p.ID != want.ID || p.KnowledgeBase != want.KnowledgeBase || p.DocumentID != want.DocumentID ||
		p.Document != want.Document || p.Title != want.Title || p.Position != want.Position ||
		p.Text != want.Text || !slices.Equal(p.HeadingPath, want.HeadingPath) {
		t.Errorf("passage = %+v\nwant chunk %+v", p, want)
	}
	// A chunk without headings comes back without headings.
	got = MustSearch(t, ix, knowledge.Query{Text: "backup nightly database", KnowledgeBases: []string{"docs"}})
	if len(got) == 0 || got[0].DocumentID != "doc-ops" || len(got[0].HeadingPath) != 0 {
		t.Errorf("search for the operations chunk = %+v", got)
	}
}

func testReplace(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix)
	d := corpusDoc("doc-slack")
	d.sections = []section{{[]string{"Slack"}, "# Slack\n\nThe setup wizard now configures the workspace."}}
	MustUpsert(t, ix, d.chunks())

	if n := MustDocuments(t, ix, "docs")["docs/doc-slack"]; n != 1 {
		t.Errorf("doc-slack has %d chunks after the replace, want 1", n)
	}
	for _, q := range []string{"socket mode", "invite acknowledged"} {
		for _, p := range MustSearch(t, ix, knowledge.Query{Text: q}) {
			if p.DocumentID == "doc-slack" {
				t.Errorf("Search(%q) found replaced chunk %s: %q", q, p.ID, p.Text)
			}
		}
	}
	got := MustSearch(t, ix, knowledge.Query{Text: "wizard"})
	if len(got) != 1 || got[0].ID != knowledge.ChunkID("doc-slack", 0) {
		t.Errorf("Search(wizard) = %q, want the new chunk", ids(got))
	}
	// Other documents are untouched.
	if n := MustDocuments(t, ix, "docs")["docs/doc-discord"]; n != 2 {
		t.Errorf("doc-discord has %d chunks, want 2", n)
	}
	// Upserting nothing changes nothing.
	MustUpsert(t, ix, nil)
	if docs := MustDocuments(t, ix, ""); len(docs) != len(corpus) {
		t.Errorf("Documents = %v after an empty upsert, want %d documents", docs, len(corpus))
	}
}

func testSeveralDocuments(t *testing.T, ix knowledge.Index) {
	var all []knowledge.Chunk
	for _, d := range corpus {
		all = append(all, d.chunks()...)
	}
	MustUpsert(t, ix, all)
	docs := MustDocuments(t, ix, "")
	for _, d := range corpus {
		if n := docs[d.kb+"/"+d.id]; n != len(d.sections) {
			t.Errorf("%s/%s has %d chunks, want %d", d.kb, d.id, n, len(d.sections))
		}
	}
	// Upserting the same batch again replaces rather than duplicates.
	MustUpsert(t, ix, all)
	if again := MustDocuments(t, ix, ""); !mapsEqual(again, docs) {
		t.Errorf("Documents after a second upsert = %v, want %v", again, docs)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testInvalidChunks(t *testing.T, ix knowledge.Index) {
	good := corpusDoc("doc-ops").chunks()[0]
	tests := []struct {
		name   string
		chunks []knowledge.Chunk
	}{
		{"no id", []knowledge.Chunk{func() knowledge.Chunk { c := good; c.ID = ""; return c }()}},
		{"no knowledge base", []knowledge.Chunk{func() knowledge.Chunk { c := good; c.KnowledgeBase = ""; return c }()}},
		{"no document id", []knowledge.Chunk{func() knowledge.Chunk { c := good; c.DocumentID = ""; return c }()}},
		{"duplicate id", []knowledge.Chunk{good, good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ix.Upsert(context.Background(), tt.chunks)
			if code := engine.ErrorCode(err); code != engine.EINVALID {
				t.Errorf("Upsert error = %v (code %q), want code %q", err, code, engine.EINVALID)
			}
		})
	}
	if docs := MustDocuments(t, ix, ""); len(docs) != 0 {
		t.Errorf("rejected upserts left documents: %v", docs)
	}
}

func testDeleteDocument(t *testing.T, ix knowledge.Index) {
	ctx := context.Background()
	loadCorpus(t, ix)
	if err := ix.DeleteDocument(ctx, "docs", "doc-slack"); err != nil {
		t.Fatalf("DeleteDocument: %v", err)
	}
	docs := MustDocuments(t, ix, "docs")
	if _, ok := docs["docs/doc-slack"]; ok {
		t.Errorf("doc-slack still listed after delete: %v", docs)
	}
	if docs["docs/doc-discord"] != 2 {
		t.Errorf("doc-discord lost chunks: %v", docs)
	}
	for _, q := range []string{"slack", "socket mode", "invite acknowledged", "ConvoSphere threads"} {
		for _, p := range MustSearch(t, ix, knowledge.Query{Text: q, KnowledgeBases: []string{"docs"}}) {
			if p.DocumentID == "doc-slack" {
				t.Errorf("Search(%q) found deleted chunk %s", q, p.ID)
			}
		}
	}
	// The same document id in another knowledge base is another document.
	other := corpusDoc("doc-etiquette")
	if err := ix.DeleteDocument(ctx, "docs", other.id); err != nil {
		t.Fatalf("DeleteDocument of another knowledge base's id: %v", err)
	}
	if MustDocuments(t, ix, "other")["other/doc-etiquette"] != 1 {
		t.Error("deleting docs/doc-etiquette removed other/doc-etiquette")
	}
	// Deleting what is not there is not an error.
	for _, d := range [][2]string{{"docs", "doc-slack"}, {"docs", "missing"}, {"missing", "missing"}} {
		if err := ix.DeleteDocument(ctx, d[0], d[1]); err != nil {
			t.Errorf("DeleteDocument(%q, %q) = %v, want nil", d[0], d[1], err)
		}
	}
}

func testDeleteKnowledgeBase(t *testing.T, ix knowledge.Index) {
	ctx := context.Background()
	loadCorpus(t, ix)
	if err := ix.DeleteKnowledgeBase(ctx, "other"); err != nil {
		t.Fatalf("DeleteKnowledgeBase: %v", err)
	}
	if got := MustSearch(t, ix, knowledge.Query{Text: "emoji etiquette"}); len(got) != 0 {
		t.Errorf("Search found chunks of the deleted knowledge base: %q", ids(got))
	}
	if docs := MustDocuments(t, ix, "other"); len(docs) != 0 {
		t.Errorf("Documents(other) = %v after delete", docs)
	}
	if docs := MustDocuments(t, ix, "docs"); len(docs) != 5 {
		t.Errorf("Documents(docs) = %v, want the 5 documents untouched", docs)
	}
	if err := ix.DeleteKnowledgeBase(ctx, "missing"); err != nil {
		t.Errorf("DeleteKnowledgeBase(missing) = %v, want nil", err)
	}
}

func testDocuments(t *testing.T, ix knowledge.Index) {
	if docs := MustDocuments(t, ix, ""); len(docs) != 0 {
		t.Errorf("empty index lists %v", docs)
	}
	loadCorpus(t, ix)
	want := map[string]int{}
	for _, d := range corpus {
		want[d.kb+"/"+d.id] = len(d.sections)
	}
	if got := MustDocuments(t, ix, ""); !mapsEqual(got, want) {
		t.Errorf("Documents(\"\") = %v, want %v", got, want)
	}
	if got := MustDocuments(t, ix, "other"); !mapsEqual(got, map[string]int{"other/doc-etiquette": 1}) {
		t.Errorf("Documents(other) = %v", got)
	}
	if got := MustDocuments(t, ix, "missing"); len(got) != 0 {
		t.Errorf("Documents(missing) = %v, want none", got)
	}
}

func testFilter(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix)
	tests := []struct {
		kbs  []string
		want []string // documents found for "slack threads"
	}{
		{nil, []string{"doc-etiquette", "doc-slack"}},
		{[]string{"docs"}, []string{"doc-slack"}},
		{[]string{"other"}, []string{"doc-etiquette"}},
		{[]string{"docs", "other"}, []string{"doc-etiquette", "doc-slack"}},
		{[]string{"missing"}, nil},
		{[]string{"missing", "other"}, []string{"doc-etiquette"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.kbs, "+"), func(t *testing.T) {
			got := MustSearch(t, ix, knowledge.Query{Text: "slack threads", KnowledgeBases: tt.kbs})
			if d := docIDs(got); !slices.Equal(d, tt.want) {
				t.Errorf("documents found = %q, want %q", d, tt.want)
			}
		})
	}
}

func testRanking(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix)
	tests := []struct {
		query string
		kbs   []string
		want  string // the chunk that must rank first
	}{
		{"How do I connect Slack?", []string{"docs"}, knowledge.ChunkID("doc-slack", 1)},
		{"How do I connect Slack?", nil, knowledge.ChunkID("doc-slack", 1)},
		{"how to connect discord", []string{"docs"}, knowledge.ChunkID("doc-discord", 0)},
		{"register a slash command", []string{"docs"}, knowledge.ChunkID("doc-discord", 0)},
		{"Which permissions does the bot need?", []string{"docs"}, knowledge.ChunkID("doc-discord", 1)},
		{"Mattermost access token", []string{"docs"}, knowledge.ChunkID("doc-mattermost", 0)},
		{"reindex a knowledge base", []string{"docs"}, knowledge.ChunkID("doc-knowledge", 1)},
		{"emoji reactions", nil, knowledge.ChunkID("doc-etiquette", 0)},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got := MustSearch(t, ix, knowledge.Query{Text: tt.query, KnowledgeBases: tt.kbs})
			if len(got) == 0 || got[0].ID != tt.want {
				t.Errorf("ranking = %q, want %s first", ids(got), tt.want)
			}
		})
	}
}

func testLimit(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix)
	all := MustSearch(t, ix, knowledge.Query{Text: "bot console channel", Limit: 100})
	if len(all) < 4 {
		t.Fatalf("Search(bot console channel) found %d passages, want at least 4", len(all))
	}
	for _, limit := range []int{1, 2, 3} {
		got := MustSearch(t, ix, knowledge.Query{Text: "bot console channel", Limit: limit})
		if len(got) != limit {
			t.Errorf("Limit %d returned %d passages", limit, len(got))
		}
		if !slices.Equal(ids(got), ids(all[:limit])) {
			t.Errorf("Limit %d returned %q, want the best %q", limit, ids(got), ids(all[:limit]))
		}
	}
	if got := MustSearch(t, ix, knowledge.Query{Text: "bot console channel"}); len(got) != min(len(all), knowledge.DefaultSearchLimit) {
		t.Errorf("no limit returned %d passages, want %d", len(got), min(len(all), knowledge.DefaultSearchLimit))
	}
}

func testMinScore(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix)
	q := knowledge.Query{Text: "connect slack bot token", Limit: 100}
	all := MustSearch(t, ix, q)
	if len(all) < 3 {
		t.Fatalf("found %d passages, want at least 3", len(all))
	}
	cut := all[len(all)/2].Score
	want := 0
	for _, p := range all {
		if p.Score >= cut {
			want++
		}
	}
	q.MinScore = cut
	got := MustSearch(t, ix, q)
	if len(got) != want || len(got) == 0 || got[0].ID != all[0].ID {
		t.Errorf("MinScore %v returned %q, want the %d passages scoring at least that", cut, ids(got), want)
	}
	q.MinScore = 1.5
	if got := MustSearch(t, ix, q); len(got) != 0 {
		t.Errorf("MinScore 1.5 returned %q, want nothing (scores are at most 1)", ids(got))
	}
}

func testNoMatch(t *testing.T, ix knowledge.Index) {
	if got := MustSearch(t, ix, knowledge.Query{Text: "slack"}); len(got) != 0 {
		t.Errorf("empty index returned %q", ids(got))
	}
	loadCorpus(t, ix)
	for _, q := range []string{"xylophone zeppelin", "", "   ", "?!", "the"} {
		if got := MustSearch(t, ix, knowledge.Query{Text: q}); len(got) != 0 {
			t.Errorf("Search(%q) = %q, want nothing", q, ids(got))
		}
	}
}

// HostileQueries are query strings that must never make Search fail:
// full-text query syntax, quotes, wildcards, operators and odd Unicode.
var HostileQueries = []string{
	`"`, `""`, `"""`, `'`, `slack"`, `"slack`, `"slack" "`, `'slack'`,
	`(`, `)`, `()`, `(slack`, `slack)`, `((slack))`, `slack OR`, `OR slack`, `OR`, `AND`, `NOT`,
	`NOT slack`, `slack NOT`, `slack AND OR NOT`, `NEAR`, `NEAR(`, `NEAR(slack connect)`, `NEAR(slack connect, 2)`,
	`slack NEAR/2 connect`, `*`, `slack*`, `*slack`, `sl*ck`, `-`, `-slack`, `slack -connect`, `--`, `+slack`,
	`^slack`, `slack^`, `title:slack`, `text:`, `:`, `{title headings}: slack`, `{`, `}`, `[slack]`,
	`slack\`, `\"slack\"`, `%`, `_`, `slack;DROP TABLE chunks;--`, `'; DELETE FROM chunks; --`,
	"slack\tconnect\nbot", "\x00slack", "slack\u200b", "\u200b", "ｓｌａｃｋ", "Slack 🚀 connect", "🚀",
	"接続 slack", "Überweisung", "café", "\u0301", "e\u0301", "\ufeffslack", "slack\U0010FFFF",
	strings.Repeat("slack ", 500), strings.Repeat("(", 200) + "slack", strings.Repeat(`"`, 101),
	strings.Repeat("a", 5000),
}

func testHostile(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix)
	for i, q := range HostileQueries {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got := MustSearch(t, ix, knowledge.Query{Text: q})
			plain := strings.ToLower(strings.ReplaceAll(q, "\u200b", ""))
			if strings.Contains(plain, "slack") && !strings.Contains(plain, "sl*ck") && len(got) == 0 {
				t.Errorf("Search(%q) found nothing, want the Slack chunks", q)
			}
		})
	}
}

func testConcurrent(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 2 {
		wg.Go(func() {
			d := corpusDoc("doc-ops")
			d.id = fmt.Sprintf("doc-writer-%d", w)
			for range 10 {
				if err := ix.Upsert(ctx, d.chunks()); err != nil {
					errs <- fmt.Errorf("Upsert: %w", err)
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 10 {
				got, err := ix.Search(ctx, knowledge.Query{Text: "How do I connect Slack?", KnowledgeBases: []string{"docs"}})
				if err != nil {
					errs <- fmt.Errorf("Search: %w", err)
					return
				}
				if len(got) == 0 || got[0].ID != knowledge.ChunkID("doc-slack", 1) {
					errs <- fmt.Errorf("Search during writes = %q", ids(got))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	docs := MustDocuments(t, ix, "docs")
	if docs["docs/doc-writer-0"] != 1 || docs["docs/doc-writer-1"] != 1 {
		t.Errorf("after concurrent upserts Documents = %v", docs)
	}
}
