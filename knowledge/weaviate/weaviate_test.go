package weaviate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wv "github.com/weaviate/weaviate-go-client/v4/weaviate"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/graphql"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/indextest"
	"github.com/convosphere/convosphere/knowledge/weaviate"
)

// serverURL returns the URL of the Weaviate server the tests use, skipping
// the test when none is configured (failing when servers are required).
func serverURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("CONVOSPHERE_TEST_WEAVIATE_URL")
	if u == "" {
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") == "1" {
			tb.Fatal("CONVOSPHERE_TEST_WEAVIATE_URL is not set: run `eval \"$(scripts/weaviate.sh start)\"` first")
		}
		tb.Skip("CONVOSPHERE_TEST_WEAVIATE_URL is not set: run `eval \"$(scripts/weaviate.sh start)\"` to run the Weaviate tests")
	}
	return u
}

// newCollection returns a collection name no other test uses and drops the
// collection at the end of the test.
func newCollection(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "ConvoSphereTest_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() { dropCollection(tb, name) })
	return name
}

// dropCollection deletes a collection with the client itself: the index
// has no such operation (an index never drops its own collection).
func dropCollection(tb testing.TB, name string) {
	tb.Helper()
	u := serverURL(tb)
	client, err := wv.NewClient(wv.Config{Scheme: "http", Host: strings.TrimPrefix(u, "http://")})
	if err != nil {
		tb.Errorf("drop collection %s: %v", name, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Schema().ClassDeleter().WithClassName(name).Do(ctx); err != nil {
		tb.Errorf("drop collection %s: %v", name, err)
	}
}

// MustOpen opens an index on a new collection of the test server, dropped
// at the end of the test.
func MustOpen(tb testing.TB) *weaviate.Index {
	tb.Helper()
	return MustOpenCollection(tb, newCollection(tb))
}

// MustOpenCollection opens an index on the named collection.
func MustOpenCollection(tb testing.TB, collection string) *weaviate.Index {
	tb.Helper()
	ix, err := weaviate.Open(context.Background(), weaviate.Config{URL: serverURL(tb), Collection: collection})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := ix.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return ix
}

func TestConformance(t *testing.T) {
	serverURL(t)
	indextest.Run(t, func(tb testing.TB) knowledge.Index { return MustOpen(tb) })
}

func TestName(t *testing.T) {
	if got := MustOpen(t).Name(); got != "weaviate" {
		t.Errorf("Name() = %q, want weaviate", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  weaviate.Config
		want string // part of the message
	}{
		{"no url", weaviate.Config{}, "weaviate.url is not set"},
		{"not a url", weaviate.Config{URL: "127.0.0.1:8080"}, "weaviate.url"},
		{"ftp", weaviate.Config{URL: "ftp://127.0.0.1"}, "weaviate.url"},
		{"credentials", weaviate.Config{URL: "http://user:pw@127.0.0.1:8080"}, "weaviate.api_key"},
		{"path", weaviate.Config{URL: "http://127.0.0.1:8080/v1"}, "path"},
		{"lowercase collection", weaviate.Config{URL: "http://127.0.0.1:8080", Collection: "chunks"}, "weaviate.collection"},
		{"collection with dash", weaviate.Config{URL: "http://127.0.0.1:8080", Collection: "Convo-Chunks"}, "weaviate.collection"},
		{"negative timeout", weaviate.Config{URL: "http://127.0.0.1:8080", Timeout: -time.Second}, "weaviate.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if code := engine.ErrorCode(err); code != engine.EINVALID {
				t.Fatalf("Validate() = %v (code %q), want %q", err, code, engine.EINVALID)
			}
			if !strings.Contains(engine.ErrorMessage(err), tt.want) {
				t.Errorf("message %q does not mention %q", engine.ErrorMessage(err), tt.want)
			}
			if _, err := weaviate.Open(context.Background(), tt.cfg); engine.ErrorCode(err) != engine.EINVALID {
				t.Errorf("Open() = %v, want the same EINVALID error", err)
			}
		})
	}
	ok := weaviate.Config{URL: "https://weaviate.example.com/", APIKey: "secret-key"}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%v) = %v", ok, err)
	}
	if s := ok.String(); strings.Contains(s, "secret-key") {
		t.Errorf("String() leaks the API key: %s", s)
	}
}

func TestOpenUnreachable(t *testing.T) {
	// A port that nothing listens on: listen, note the port, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	start := time.Now()
	_, err = weaviate.Open(context.Background(), weaviate.Config{URL: "http://" + addr})
	if code := engine.ErrorCode(err); code != engine.EUNAVAILABLE {
		t.Fatalf("Open(closed port) = %v (code %q), want %q", err, code, engine.EUNAVAILABLE)
	}
	msg := engine.ErrorMessage(err)
	for _, want := range []string{"http://" + addr, "weaviate.url", "unreachable"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %s to report a closed port", d)
	}
}

func TestOpenTimeout(t *testing.T) {
	// A server that accepts and never answers in time.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	_, err := weaviate.Open(context.Background(), weaviate.Config{URL: srv.URL, Timeout: 200 * time.Millisecond})
	if code := engine.ErrorCode(err); code != engine.ETIMEOUT {
		t.Fatalf("Open(silent server) = %v (code %q), want %q", err, code, engine.ETIMEOUT)
	}
	if msg := engine.ErrorMessage(err); !strings.Contains(msg, "weaviate.timeout") {
		t.Errorf("message %q does not name weaviate.timeout", msg)
	}

	// The caller's deadline is a timeout too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = weaviate.Open(ctx, weaviate.Config{URL: srv.URL})
	if code := engine.ErrorCode(err); code != engine.ETIMEOUT {
		t.Errorf("Open with an expiring context = %v (code %q), want %q", err, code, engine.ETIMEOUT)
	}
}

func TestOpenRefusesForeignCollection(t *testing.T) {
	name := newCollection(t)
	client, err := wv.NewClient(wv.Config{Scheme: "http", Host: strings.TrimPrefix(serverURL(t), "http://")})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Schema().ClassCreator().WithClass(foreignClass(name)).Do(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = weaviate.Open(context.Background(), weaviate.Config{URL: serverURL(t), Collection: name})
	if code := engine.ErrorCode(err); code != engine.EINVALID {
		t.Fatalf("Open(foreign collection) = %v (code %q), want %q", err, code, engine.EINVALID)
	}
	if msg := engine.ErrorMessage(err); !strings.Contains(msg, "weaviate.collection") {
		t.Errorf("message %q does not name weaviate.collection", msg)
	}
}

func chunk(kb, doc string, pos int, text string) knowledge.Chunk {
	return knowledge.Chunk{
		ID: knowledge.ChunkID(doc, pos), KnowledgeBase: kb, DocumentID: doc, Document: doc + ".md",
		Title: doc, HeadingPath: []string{"Setup", "Slack"}, Position: pos, Text: text,
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	name := newCollection(t)
	first := MustOpenCollection(t, name)
	indextest.MustUpsert(t, first, []knowledge.Chunk{
		chunk("docs", "d1", 0, "Connect Slack with Socket Mode."),
		chunk("docs", "d1", 1, "Paste the bot token into the console."),
	})
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again := MustOpenCollection(t, name)
	if docs := indextest.MustDocuments(t, again, ""); docs["docs/d1"] != 2 || len(docs) != 1 {
		t.Errorf("Documents after reopening = %v, want docs/d1 with 2 chunks", docs)
	}
	got := indextest.MustSearch(t, again, knowledge.Query{Text: "socket mode"})
	if len(got) != 1 || got[0].ID != "d1:0" || !slices.Equal(got[0].HeadingPath, []string{"Setup", "Slack"}) {
		t.Errorf("Search after reopening = %+v", got)
	}
	// Writes through the new index replace what the first one wrote.
	indextest.MustUpsert(t, again, []knowledge.Chunk{chunk("docs", "d1", 0, "Socket Mode needs an app token.")})
	if err := again.DeleteDocument(ctx, "docs", "missing"); err != nil {
		t.Fatal(err)
	}
	if docs := indextest.MustDocuments(t, again, "docs"); docs["docs/d1"] != 1 {
		t.Errorf("Documents after the second upsert = %v, want 1 chunk", docs)
	}
}

func TestUpsertReplacesChunks(t *testing.T) {
	ix := MustOpen(t)
	var old []knowledge.Chunk
	for i, w := range []string{"amber", "basalt", "cobalt", "dolomite", "emerald"} {
		old = append(old, chunk("docs", "minerals", i, "The "+w+" section of the minerals guide."))
	}
	indextest.MustUpsert(t, ix, old)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{chunk("docs", "other", 0, "An unrelated guide about cobalt blue paint.")})
	indextest.MustUpsert(t, ix, []knowledge.Chunk{
		chunk("docs", "minerals", 0, "Granite comes first now."),
		chunk("docs", "minerals", 1, "Then quartz."),
	})

	docs := indextest.MustDocuments(t, ix, "docs")
	if docs["docs/minerals"] != 2 || docs["docs/other"] != 1 {
		t.Errorf("Documents = %v, want minerals with 2 chunks and other with 1", docs)
	}
	for _, w := range []string{"amber", "basalt", "dolomite", "emerald"} {
		if got := indextest.MustSearch(t, ix, knowledge.Query{Text: w}); len(got) != 0 {
			t.Errorf("Search(%s) found replaced chunks %v", w, got)
		}
	}
	if got := indextest.MustSearch(t, ix, knowledge.Query{Text: "cobalt"}); len(got) != 1 || got[0].DocumentID != "other" {
		t.Errorf("Search(cobalt) = %+v, want only the other document", got)
	}
	got := indextest.MustSearch(t, ix, knowledge.Query{Text: "granite quartz", Limit: 10})
	if len(got) != 2 || got[0].Text != "Granite comes first now." && got[1].Text != "Granite comes first now." {
		t.Errorf("Search(granite quartz) = %+v, want the two new chunks", got)
	}
	// A chunk id moved to another document leaves the first one.
	indextest.MustUpsert(t, ix, []knowledge.Chunk{{ID: "minerals:1", KnowledgeBase: "docs", DocumentID: "moved", Text: "Quartz moved."}})
	docs = indextest.MustDocuments(t, ix, "docs")
	if docs["docs/minerals"] != 1 || docs["docs/moved"] != 1 {
		t.Errorf("Documents after moving a chunk = %v", docs)
	}
}

// TestFreshImportRanking searches right after an import, before Weaviate
// flushes its memtables: Weaviate 1.35.2's BM25 then leaves good matches
// out of the top k whenever more fresh chunks match than k, even for a
// generous k. The index must rank as it would after the flush.
func TestFreshImportRanking(t *testing.T) {
	collection := newCollection(t)
	ix := MustOpenCollection(t, collection)
	const fillers = 300
	var chunks []knowledge.Chunk
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
	for d := range fillers {
		// Filler that shares words with the queries, so that every query
		// matches hundreds of chunks.
		text := fmt.Sprintf("Guide %d mentions %s and %s in passing, and the console.", d, words[d%len(words)], words[(d*7+3)%len(words)])
		chunks = append(chunks, chunk("docs", fmt.Sprintf("filler-%03d", d), 0, text))
	}
	// The targets: the only chunks with all of their query's words,
	// written last.
	chunks = append(chunks,
		chunk("docs", "target-1", 0, "Rotate the signing secret of the Slack app, then restart the bot."),
		chunk("docs", "target-2", 0, "Kilo lima mike: the rare words of the second target, with alpha and bravo."),
	)
	indextest.MustUpsert(t, ix, chunks)

	tests := []struct{ query, want string }{
		{"kilo lima mike alpha bravo", "target-2:0"},
		{"restart bot console secret", "target-1:0"},
		{"rotate signing secret", "target-1:0"},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 3, 10, 100} {
			for _, kbs := range [][]string{nil, {"docs"}} {
				got := indextest.MustSearch(t, ix, knowledge.Query{Text: tt.query, Limit: limit, KnowledgeBases: kbs})
				if len(got) == 0 || got[0].ID != tt.want {
					t.Errorf("Search(%q, limit %d, %q) right after the import = %v, want %s first", tt.query, limit, kbs, passageIDs(got)[:min(3, len(got))], tt.want)
				}
			}
		}
		// Hybrid search has the same lexical candidates.
		got := indextest.MustSearch(t, ix, knowledge.Query{Text: tt.query, Vector: []float32{1, 0}, Fusion: engine.FusionAlpha, Alpha: 0, Limit: 3})
		if len(got) == 0 || got[0].ID != tt.want {
			t.Errorf("hybrid Search(%q) right after the import = %v, want %s first", tt.query, passageIDs(got), tt.want)
		}
	}
	// Say whether this run met the quirk: Weaviate's own top 50, which
	// is all an index asking for 4 × 10 or at least 50 candidates gets.
	client, err := wv.NewClient(wv.Config{Scheme: "http", Host: strings.TrimPrefix(serverURL(t), "http://")})
	if err != nil {
		t.Fatal(err)
	}
	bm25 := client.GraphQL().Bm25ArgBuilder().WithQuery("kilo lima mike alpha bravo")
	resp, err := client.GraphQL().Get().WithClassName(collection).WithBM25(bm25).WithLimit(50).
		WithFields(graphql.Field{Name: "chunk_id"}).Do(context.Background())
	if err != nil || len(resp.Errors) > 0 {
		t.Fatalf("plain BM25 query: %v %v", err, resp.Errors)
	}
	if !strings.Contains(fmt.Sprint(resp.Data), "target-2:0") {
		t.Log("Weaviate's plain BM25 top 50 misses target-2 right after the import: the quirk is present, and the index got around it")
	} else {
		t.Log("Weaviate's plain BM25 top 50 has target-2: this server does not show the quirk")
	}
}

func passageIDs(ps []engine.Passage) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func TestDocumentsManyDocuments(t *testing.T) {
	// Weaviate returns 100 groups of an aggregation unless told otherwise.
	ix := MustOpen(t)
	var chunks []knowledge.Chunk
	for d := range 150 {
		for p := range 1 + d%3 {
			chunks = append(chunks, chunk("many", fmt.Sprintf("doc-%03d", d), p, "text"))
		}
	}
	same := chunk("few", "doc-000", 0, "the same document id in another knowledge base")
	same.ID = "few/doc-000:0" // chunk ids are unique across knowledge bases
	chunks = append(chunks, same)
	indextest.MustUpsert(t, ix, chunks)
	docs := indextest.MustDocuments(t, ix, "many")
	if len(docs) != 150 {
		t.Fatalf("Documents(many) lists %d documents, want 150", len(docs))
	}
	for d := range 150 {
		if n := docs[fmt.Sprintf("many/doc-%03d", d)]; n != 1+d%3 {
			t.Errorf("doc-%03d has %d chunks, want %d", d, n, 1+d%3)
		}
	}
	all, err := ix.Documents(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 151 || all[0].KnowledgeBase != "few" || all[1].DocumentID != "doc-000" || all[150].DocumentID != "doc-149" {
		t.Errorf("Documents(\"\") = %d documents, first %+v, want 151 ordered by knowledge base and id", len(all), all[:min(2, len(all))])
	}
}

func TestUpsertRejectsUnfilterableNames(t *testing.T) {
	ix := MustOpen(t)
	for _, kb := range []string{"docs\x00", " docs", "docs\u200b"} {
		c := chunk(kb, "d1", 0, "text")
		if err := ix.Upsert(context.Background(), []knowledge.Chunk{c}); engine.ErrorCode(err) != engine.EINVALID {
			t.Errorf("Upsert with knowledge base %q = %v, want EINVALID", kb, err)
		}
		// Searching, listing and deleting such names is no error.
		indextest.MustSearch(t, ix, knowledge.Query{Text: "text", KnowledgeBases: []string{kb}})
		indextest.MustDocuments(t, ix, kb)
		if err := ix.DeleteKnowledgeBase(context.Background(), kb); err != nil {
			t.Errorf("DeleteKnowledgeBase(%q) = %v", kb, err)
		}
	}
}

// vec returns a unit-less test vector.
func vec(xs ...float32) []float32 { return xs }

func TestVectorSearch(t *testing.T) {
	ix := MustOpen(t)
	plain := func(kb, doc, text string) knowledge.Chunk {
		return knowledge.Chunk{ID: doc + ":0", KnowledgeBase: kb, DocumentID: doc, Title: "Guide", Text: text}
	}
	chunks := []knowledge.Chunk{
		plain("docs", "north", "Slack setup."),
		plain("docs", "east", "Discord setup."),
		plain("docs", "south", "Slack troubleshooting."),
		plain("other", "west", "Mattermost notes."),
	}
	chunks[0].Vector = vec(1, 0, 0)
	chunks[1].Vector = vec(0, 1, 0)
	chunks[2].Vector = vec(-1, 0, 0)
	chunks[3].Vector = vec(0.9, 0.1, 0)
	indextest.MustUpsert(t, ix, chunks)

	got := indextest.MustSearch(t, ix, knowledge.Query{Vector: vec(1, 0.2, 0), Mode: engine.SearchVector})
	if ids := passageIDs(got); !slices.Equal(ids, []string{"west:0", "north:0", "east:0"}) {
		t.Errorf("vector search = %v, want west, north, east (south points away)", ids)
	}
	for _, p := range got {
		if p.Scores.Vector == nil || *p.Scores.Vector != p.Score || p.Scores.Lexical != nil {
			t.Errorf("%s: scores %+v, want only the vector score, equal to the score %v", p.ID, p.Scores, p.Score)
		}
	}
	got = indextest.MustSearch(t, ix, knowledge.Query{Vector: vec(1, 0, 0), Mode: engine.SearchVector, KnowledgeBases: []string{"docs"}, Limit: 1})
	if len(got) != 1 || got[0].ID != "north:0" || got[0].Score < 0.999 {
		t.Errorf("vector search in docs = %+v, want north with similarity 1", got)
	}

	// Hybrid: "slack" lexically finds north and south; the vector prefers
	// north, then west.
	for _, fusion := range []string{engine.FusionRRF, engine.FusionAlpha} {
		q := knowledge.Query{Text: "slack", Vector: vec(1, 0, 0), Fusion: fusion, Alpha: 0.5}
		got = indextest.MustSearch(t, ix, q)
		if len(got) < 2 || got[0].ID != "north:0" {
			t.Errorf("hybrid %s = %v, want north first", fusion, passageIDs(got))
			continue
		}
		if got[0].Scores.Fused == nil || *got[0].Scores.Fused != got[0].Score || got[0].Scores.Lexical == nil || got[0].Scores.Vector == nil {
			t.Errorf("hybrid %s: north's scores = %+v, want lexical, vector and fused", fusion, scores(got[0].Scores))
		}
		if fusion == engine.FusionRRF && got[0].Score != 1 {
			t.Errorf("hybrid rrf: north, first in both lists, scores %v, want 1", got[0].Score)
		}
		for _, p := range got {
			if p.ID == "east:0" {
				t.Errorf("hybrid %s found east, which matches neither signal: %v", fusion, passageIDs(got))
			}
		}
	}
	// Alpha 0 is lexical only, alpha 1 vector only.
	got = indextest.MustSearch(t, ix, knowledge.Query{Text: "troubleshooting", Vector: vec(1, 0, 0), Fusion: engine.FusionAlpha, Alpha: 0})
	if len(got) != 1 || got[0].ID != "south:0" {
		t.Errorf("alpha 0 = %v, want only the lexical match south", passageIDs(got))
	}
	got = indextest.MustSearch(t, ix, knowledge.Query{Text: "troubleshooting", Vector: vec(1, 0, 0), Fusion: engine.FusionAlpha, Alpha: 1})
	if len(got) == 0 || got[0].ID != "north:0" || slices.Contains(passageIDs(got), "south:0") {
		t.Errorf("alpha 1 = %v, want north first and not south", passageIDs(got))
	}
	// The RRF k is applied: with k = 1, west, second by vector and not
	// found lexically, scores (1/(1+2)) / (2/(1+1)) = 1/3.
	got = indextest.MustSearch(t, ix, knowledge.Query{Text: "slack", Vector: vec(1, 0, 0), Fusion: engine.FusionRRF, RRFK: 1})
	if i := slices.Index(passageIDs(got), "west:0"); i < 0 || got[i].Score < 0.3333 || got[i].Score > 0.3334 {
		t.Errorf("rrf k=1 = %+v, want west scoring 1/3", got)
	}
}

func scores(s engine.Scores) string {
	f := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("lexical=%s vector=%s fused=%s", f(s.Lexical), f(s.Vector), f(s.Fused))
}

func TestSearchRejectsBadQueries(t *testing.T) {
	ix := MustOpen(t)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{chunk("docs", "d", 0, "slack")})
	for _, q := range []knowledge.Query{
		{Text: "slack", Mode: engine.SearchVector},
		{Text: "slack", Mode: engine.SearchHybrid},
		{Text: "slack", Mode: "semantic"},
		{Text: "slack", Vector: vec(1, 0), Fusion: "max"},
		{Text: "slack", Vector: vec(1, 0), Fusion: engine.FusionAlpha, Alpha: 2},
	} {
		if _, err := ix.Search(context.Background(), q); engine.ErrorCode(err) != engine.EINVALID {
			t.Errorf("Search(%+v) = %v, want EINVALID", q, err)
		}
	}
}

func TestVectorDimensionsMismatch(t *testing.T) {
	ctx := context.Background()
	ix := MustOpen(t)
	c := chunk("docs", "d1", 0, "three dimensions")
	c.Vector = vec(1, 0, 0)
	indextest.MustUpsert(t, ix, []knowledge.Chunk{c})

	d := chunk("docs", "d2", 0, "four dimensions")
	d.Vector = vec(1, 0, 0, 0)
	err := ix.Upsert(ctx, []knowledge.Chunk{d})
	if code := engine.ErrorCode(err); code != engine.EINVALID {
		t.Errorf("Upsert of a 4-dimension vector into a 3-dimension index = %v (code %q), want %q", err, code, engine.EINVALID)
	}
	_, err = ix.Search(ctx, knowledge.Query{Vector: vec(1, 0), Mode: engine.SearchVector})
	if code := engine.ErrorCode(err); code != engine.EINVALID {
		t.Errorf("Search with a 2-dimension vector = %v (code %q), want %q", err, code, engine.EINVALID)
	}
	// Mixed sizes in one batch are refused before anything is written.
	e := chunk("docs", "d3", 1, "mixed")
	e.Vector = vec(1, 0)
	if err := ix.Upsert(ctx, []knowledge.Chunk{c, e}); engine.ErrorCode(err) != engine.EINVALID {
		t.Errorf("Upsert of mixed sizes = %v, want EINVALID", err)
	}
}

func TestConcurrentUpsertsOfOneDocument(t *testing.T) {
	ix := MustOpen(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			var chunks []knowledge.Chunk
			for p := range 2 + w {
				chunks = append(chunks, chunk("docs", "shared", p, fmt.Sprintf("writer %d chunk %d", w, p)))
			}
			for range 5 {
				if err := ix.Upsert(ctx, chunks); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Whichever writer was last, the document is that writer's chunks, whole.
	n := indextest.MustDocuments(t, ix, "docs")["docs/shared"]
	got := indextest.MustSearch(t, ix, knowledge.Query{Text: "writer chunk", Limit: 50})
	if n < 2 || n > 5 || len(got) != n {
		t.Fatalf("after concurrent upserts: %d chunks listed, %d found", n, len(got))
	}
	writer := strings.Fields(got[0].Text)[1]
	for _, p := range got {
		if strings.Fields(p.Text)[1] != writer {
			t.Errorf("document mixes chunks of writers %s and %s", writer, strings.Fields(p.Text)[1])
		}
	}
}

func TestDeleteKnowledgeBaseLeavesOthers(t *testing.T) {
	ctx := context.Background()
	ix := MustOpen(t)
	var chunks []knowledge.Chunk
	for d := range 40 {
		kb := "alpha"
		if d%2 == 1 {
			kb = "beta"
		}
		for p := range 5 {
			chunks = append(chunks, chunk(kb, fmt.Sprintf("doc-%d", d), p, "shared words"))
		}
	}
	indextest.MustUpsert(t, ix, chunks)
	if err := ix.DeleteKnowledgeBase(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if docs := indextest.MustDocuments(t, ix, "alpha"); len(docs) != 0 {
		t.Errorf("alpha still lists %v", docs)
	}
	if docs := indextest.MustDocuments(t, ix, "beta"); len(docs) != 20 {
		t.Errorf("beta lists %d documents, want 20", len(docs))
	}
	for _, p := range indextest.MustSearch(t, ix, knowledge.Query{Text: "shared words", Limit: 50}) {
		if p.KnowledgeBase != "beta" {
			t.Errorf("search found %s of %s", p.ID, p.KnowledgeBase)
		}
	}
}

// foreignClass is a collection made by someone else for something else.
func foreignClass(name string) *models.Class {
	return &models.Class{Class: name, Vectorizer: "none", Properties: []*models.Property{
		{Name: "body", DataType: []string{"text"}},
	}}
}

// TestWritesWhileVectorSpacesChange writes while new vector sizes arrive:
// Weaviate makes the collection read-only for a moment each time it adds
// a vector space, and writes must wait for it rather than fail.
func TestWritesWhileVectorSpacesChange(t *testing.T) {
	ix := MustOpen(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var chunks []knowledge.Chunk
			for p := range 20 {
				chunks = append(chunks, chunk("docs", fmt.Sprintf("doc-%d", i%5), p, "plain text"))
			}
			if err := ix.Upsert(ctx, chunks); err != nil {
				t.Errorf("Upsert without vectors: %v", err)
				return
			}
			if err := ix.DeleteDocument(ctx, "docs", fmt.Sprintf("doc-%d", (i+2)%5)); err != nil {
				t.Errorf("DeleteDocument: %v", err)
				return
			}
		}
	})
	for dims := 2; dims < 8; dims++ {
		c := chunk(fmt.Sprintf("kb-%d", dims), "vectors", 0, "with a vector")
		c.Vector = make([]float32, dims)
		c.Vector[0] = 1
		if err := ix.Upsert(ctx, []knowledge.Chunk{c}); err != nil {
			t.Errorf("Upsert of a %d-dimension vector: %v", dims, err)
		}
		got := indextest.MustSearch(t, ix, knowledge.Query{Vector: c.Vector, Mode: engine.SearchVector})
		if len(got) != 1 || got[0].ID != c.ID {
			t.Errorf("search with a %d-dimension vector = %v, want %s", dims, passageIDs(got), c.ID)
		}
	}
	close(stop)
	wg.Wait()
}
