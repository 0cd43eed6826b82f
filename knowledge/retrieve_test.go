package knowledge_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/indextest"
)

// embedder is a test engine.Embedder: indextest.Embed of each text, or a
// failure, with its calls recorded.
type embedder struct {
	mu    sync.Mutex
	calls [][]string
	fail  error
	dims  int  // when set, vectors are cut to this size (another model)
	short bool // when set, one vector fewer than texts
}

func (e *embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, slices.Clone(texts))
	if e.fail != nil {
		return nil, e.fail
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = indextest.Embed(t)
		if e.dims > 0 {
			out[i] = out[i][:e.dims]
		}
	}
	if e.short {
		out = out[1:]
	}
	return out, nil
}

func (e *embedder) set(f func(e *embedder)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e)
}

func (e *embedder) texts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		n += len(c)
	}
	return n
}

// reranker is a test knowledge.Reranker: a text scores 0.9 when it holds
// favourite, else 0.2 (0.1 when it also holds penalised), or fails.
type reranker struct {
	mu        sync.Mutex
	favourite string
	penalised string
	fail      error
	queries   []string
	texts     [][]string
}

func (r *reranker) Rerank(ctx context.Context, query string, texts []string) ([]float64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, query)
	r.texts = append(r.texts, slices.Clone(texts))
	if r.fail != nil {
		return nil, r.fail
	}
	out := make([]float64, len(texts))
	for i, t := range texts {
		switch {
		case strings.Contains(t, r.favourite):
			out[i] = 0.9
		case r.penalised != "" && strings.Contains(t, r.penalised):
			out[i] = 0.1
		default:
			out[i] = 0.2
		}
	}
	return out, nil
}

// hybridDocs are built like indextest's hybrid corpus (see hybridQuery):
// lexically lighthouse.md has all three words of the query and
// rotation.md two; by meaning renewal.md is closest, then rotation.md,
// vault.md, lighthouse.md and museum.md. ops.md is found by the meaning
// of backupQuery only.
var hybridDocs = map[string]string{
	"lighthouse.md": "# Memo\n\nRotate the api dial to list credentials for the lighthouse keeper, ferry captain and coast guard.\n",
	"rotation.md":   "# Memo\n\nRotate the credentials: renew each secret and cycle every token monthly.\n",
	"renewal.md":    "# Memo\n\nRenew secret, cycle password, refresh key.\n",
	"vault.md":      "# Memo\n\nRefresh a secret key for the vault door.\n",
	"museum.md":     "# Memo\n\nCycle through the museum galleries, gardens, fountains, statues, bridges and towers.\n",
	"ops.md":        "# Operations\n\nBack up the database file every night.\n",
}

const (
	hybridQuery = "rotate api credentials"
	backupQuery = "archive snapshots at midnight" // no word of it is in the corpus
)

// MustHybridService returns a fixture whose service has an embedder (and
// rerank when set), with hybridDocs ingested into "docs".
func MustHybridService(tb testing.TB, rerank *reranker) (*fixture, *embedder) {
	tb.Helper()
	f := MustService(tb, knowledge.Config{})
	emb := &embedder{}
	deps := knowledge.Deps{Store: f.store, Index: f.index, Embedder: emb}
	if rerank != nil {
		deps.Reranker = rerank
	}
	svc, err := knowledge.New(knowledge.Config{}, deps)
	if err != nil {
		tb.Fatal(err)
	}
	f.svc = svc
	for _, src := range slices.Sorted(mapsKeys(hybridDocs)) {
		f.MustIngest(tb, "docs", src, hybridDocs[src])
	}
	return f, emb
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (f *fixture) mustRetrieveWith(tb testing.TB, query string, set engine.RetrievalSettings) *engine.Retrieval {
	tb.Helper()
	res, err := f.svc.Retrieve(context.Background(), engine.RetrievalRequest{Query: query, KnowledgeBases: []string{"docs"}, Settings: set})
	if err != nil {
		tb.Fatalf("Retrieve(%q, %+v): %v", query, set, err)
	}
	return res
}

func documents(ps []engine.Passage) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Document
	}
	return out
}

func top(res *engine.Retrieval) string {
	if len(res.Passages) == 0 {
		return ""
	}
	return res.Passages[0].Document
}

func alpha(a float64) *float64 { return &a }

// TestEverySettingIsApplied changes one setting at a time and shows that
// the result changes as the setting says, and that the applied settings
// report it.
func TestEverySettingIsApplied(t *testing.T) {
	rr := &reranker{favourite: "museum"}
	f, _ := MustHybridService(t, rr)

	// The premises: each signal alone ranks differently.
	lexical := f.mustRetrieveWith(t, hybridQuery, engine.RetrievalSettings{Mode: engine.SearchLexical, Limit: 10})
	if got := documents(lexical.Passages); !slices.Equal(got, []string{"lighthouse.md", "rotation.md"}) {
		t.Fatalf("lexical ranking = %q", got)
	}
	vector := f.mustRetrieveWith(t, hybridQuery, engine.RetrievalSettings{Mode: engine.SearchVector, Limit: 10})
	if got := documents(vector.Passages); !slices.Equal(got, []string{"renewal.md", "rotation.md", "vault.md", "lighthouse.md", "museum.md"}) {
		t.Fatalf("vector ranking = %q", got)
	}

	tests := []struct {
		setting string
		a, b    engine.RetrievalSettings
		query   string
		check   func(t *testing.T, a, b *engine.Retrieval)
	}{
		{"limit", engine.RetrievalSettings{Limit: 1}, engine.RetrievalSettings{Limit: 3}, hybridQuery, func(t *testing.T, a, b *engine.Retrieval) {
			if len(a.Passages) != 1 || len(b.Passages) != 3 || a.Applied.Limit != 1 || b.Applied.Limit != 3 {
				t.Errorf("limit 1 gave %d passages (applied %d), limit 3 gave %d (applied %d)", len(a.Passages), a.Applied.Limit, len(b.Passages), b.Applied.Limit)
			}
			if a.Passages[0].ID != b.Passages[0].ID {
				t.Errorf("limit changed the best passage: %s vs %s", a.Passages[0].ID, b.Passages[0].ID)
			}
		}},
		{"min_score", engine.RetrievalSettings{Limit: 10}, engine.RetrievalSettings{Limit: 10, MinScore: 0.6}, hybridQuery, func(t *testing.T, a, b *engine.Retrieval) {
			want := slices.DeleteFunc(slices.Clone(a.Passages), func(p engine.Passage) bool { return p.Score < 0.6 })
			if len(want) == len(a.Passages) || len(want) == 0 || !slices.Equal(ids(b.Passages), ids(want)) {
				t.Errorf("min score 0.6 gave %q, want %q of %q", ids(b.Passages), ids(want), ids(a.Passages))
			}
			if a.Applied.MinScore != 0 || b.Applied.MinScore != 0.6 {
				t.Errorf("applied min scores %v and %v", a.Applied.MinScore, b.Applied.MinScore)
			}
		}},
		{"mode", engine.RetrievalSettings{Mode: engine.SearchLexical}, engine.RetrievalSettings{Mode: engine.SearchVector}, backupQuery, func(t *testing.T, a, b *engine.Retrieval) {
			if len(a.Passages) != 0 || a.Applied.Mode != engine.SearchLexical || a.Applied.Fusion != "" {
				t.Errorf("lexical: %q, applied %+v; want nothing found lexically", documents(a.Passages), a.Applied)
			}
			if top(b) != "ops.md" || b.Applied.Mode != engine.SearchVector || b.Passages[0].Scores.Vector == nil || b.Passages[0].Scores.Lexical != nil {
				t.Errorf("vector: %+v, applied %+v; want ops.md found by meaning", b.Passages, b.Applied)
			}
		}},
		{"mode default", engine.RetrievalSettings{Mode: engine.SearchLexical}, engine.RetrievalSettings{}, hybridQuery, func(t *testing.T, a, b *engine.Retrieval) {
			if b.Applied.Mode != engine.SearchHybrid || b.Applied.Fusion != engine.FusionRRF || b.Applied.RRFK != 60 || b.Applied.Alpha != nil || len(b.Applied.Notes) != 0 {
				t.Errorf("default settings applied %+v, want hybrid with rrf, k 60", b.Applied)
			}
			if top(a) != "lighthouse.md" || top(b) != "rotation.md" || b.Passages[0].Scores.Fused == nil {
				t.Errorf("lexical top %s, hybrid top %s (%+v); want lighthouse.md and rotation.md", top(a), top(b), b.Passages[0].Scores)
			}
		}},
		{"fusion", engine.RetrievalSettings{Fusion: engine.FusionRRF}, engine.RetrievalSettings{Fusion: engine.FusionAlpha}, hybridQuery, func(t *testing.T, a, b *engine.Retrieval) {
			if a.Applied.Fusion != engine.FusionRRF || a.Applied.RRFK != 60 || a.Applied.Alpha != nil {
				t.Errorf("rrf applied %+v", a.Applied)
			}
			if b.Applied.Fusion != engine.FusionAlpha || b.Applied.Alpha == nil || *b.Applied.Alpha != 0.5 || b.Applied.RRFK != 0 {
				t.Errorf("alpha applied %+v, want alpha 0.5 by default", b.Applied)
			}
			// rotation.md is second in both lists: rrf scores it (k+1)/(k+2);
			// alpha fusion scores it from the two lists' relative scores.
			if s := scoreOf(a.Passages, "rotation.md"); math.Abs(s-61.0/62) > 1e-9 {
				t.Errorf("rrf scored rotation.md %v, want 61/62", s)
			}
			lex, vec := scoreOf(lexical.Passages, "rotation.md")/lexical.Passages[0].Score, scoreOf(vector.Passages, "rotation.md")/vector.Passages[0].Score
			if s, want := scoreOf(b.Passages, "rotation.md"), 0.5*lex+0.5*vec; math.Abs(s-want) > 1e-6 {
				t.Errorf("alpha fusion scored rotation.md %v, want 0.5×%v + 0.5×%v", s, lex, vec)
			}
		}},
		{"alpha", engine.RetrievalSettings{Fusion: engine.FusionAlpha, Alpha: alpha(0)}, engine.RetrievalSettings{Fusion: engine.FusionAlpha, Alpha: alpha(1)}, hybridQuery, func(t *testing.T, a, b *engine.Retrieval) {
			if got := documents(a.Passages); !slices.Equal(got, documents(lexical.Passages)) {
				t.Errorf("alpha 0 ranked %q, want the lexical ranking", got)
			}
			if got := documents(b.Passages); !slices.Equal(got, documents(vector.Passages)) {
				t.Errorf("alpha 1 ranked %q, want the vector ranking", got)
			}
			if a.Applied.Alpha == nil || *a.Applied.Alpha != 0 || b.Applied.Alpha == nil || *b.Applied.Alpha != 1 {
				t.Errorf("applied %+v and %+v", a.Applied, b.Applied)
			}
		}},
		{"rrf_k", engine.RetrievalSettings{RRFK: 1}, engine.RetrievalSettings{RRFK: 60}, hybridQuery, func(t *testing.T, a, b *engine.Retrieval) {
			if top(a) != "lighthouse.md" || top(b) != "rotation.md" {
				t.Errorf("k 1 ranked %q, k 60 ranked %q; want lighthouse.md, then rotation.md first", documents(a.Passages), documents(b.Passages))
			}
			if a.Applied.RRFK != 1 || b.Applied.RRFK != 60 {
				t.Errorf("applied k %d and %d", a.Applied.RRFK, b.Applied.RRFK)
			}
		}},
		{"rerank", engine.RetrievalSettings{}, engine.RetrievalSettings{Rerank: true}, hybridQuery, func(t *testing.T, a, b *engine.Retrieval) {
			if top(a) == "museum.md" || top(b) != "museum.md" {
				t.Errorf("without rerank top %s, with rerank top %s; want the reranker's favourite museum.md first only with rerank", top(a), top(b))
			}
			p := b.Passages[0]
			if p.Scores.Rerank == nil || *p.Scores.Rerank != 0.9 || p.Score != 0.9 || p.Scores.Fused == nil {
				t.Errorf("reranked passage %s scores %v %+v, want score 0.9 = rerank, fused kept", p.ID, p.Score, p.Scores)
			}
			if a.Applied.Rerank || !b.Applied.Rerank || len(b.Applied.Notes) != 0 {
				t.Errorf("applied rerank %v and %+v", a.Applied.Rerank, b.Applied)
			}
			for _, p := range a.Passages {
				if p.Scores.Rerank != nil {
					t.Errorf("unreranked passage %s has a rerank score", p.ID)
				}
			}
		}},
		{"rerank min_score", engine.RetrievalSettings{Rerank: true, Limit: 10}, engine.RetrievalSettings{Rerank: true, Limit: 10, MinScore: 0.5}, hybridQuery, func(t *testing.T, a, b *engine.Retrieval) {
			// The reranker scores every passage but museum.md 0.2: the
			// minimum score applies to the rerank score.
			if len(a.Passages) < 3 || !slices.Equal(documents(b.Passages), []string{"museum.md"}) {
				t.Errorf("min score 0.5 after rerank kept %q of %q, want museum.md only", documents(b.Passages), documents(a.Passages))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			tt.check(t, f.mustRetrieveWith(t, tt.query, tt.a), f.mustRetrieveWith(t, tt.query, tt.b))
			for _, res := range []*engine.Retrieval{f.mustRetrieveWith(t, tt.query, tt.a), f.mustRetrieveWith(t, tt.query, tt.b)} {
				if res.Applied.Backend != "embedded" {
					t.Errorf("applied backend %q", res.Applied.Backend)
				}
			}
		})
	}
	// The reranker saw the query and each candidate with its title.
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.queries) == 0 || rr.queries[0] != hybridQuery || !strings.HasPrefix(rr.texts[0][0], "Memo\n\n") || len(rr.texts[0]) < len(vector.Passages) {
		t.Errorf("reranker got %q with %q", rr.queries, rr.texts)
	}
}

func scoreOf(ps []engine.Passage, document string) float64 {
	for _, p := range ps {
		if p.Document == document {
			return p.Score
		}
	}
	return math.NaN()
}

func ids(ps []engine.Passage) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// TestRetrieveNotes: a setting that cannot be applied is reported in the
// notes, and the search does what it can.
func TestRetrieveNotes(t *testing.T) {
	ctx := context.Background()
	plain := MustService(t, knowledge.Config{})
	plain.MustIngest(t, "docs", "rotation.md", hybridDocs["rotation.md"])
	f, emb := MustHybridService(t, &reranker{favourite: "museum"})
	failingRerank := &reranker{fail: engine.Errorf(engine.EUNAVAILABLE, "The rerank endpoint is down.")}
	svcFailingRerank, err := knowledge.New(knowledge.Config{}, knowledge.Deps{Store: f.store, Index: f.index, Embedder: emb, Reranker: failingRerank})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		svc       *knowledge.Service
		set       engine.RetrievalSettings
		mode      string
		rerank    bool
		noteHas   string // "" for no note
		wantFound bool
	}{
		{"no embedder, default mode", plain.svc, engine.RetrievalSettings{}, engine.SearchLexical, false, "hybrid search skipped: no embedding model is configured", true},
		{"no embedder, vector mode", plain.svc, engine.RetrievalSettings{Mode: engine.SearchVector}, engine.SearchLexical, false, "vector search skipped: no embedding model", true},
		{"no embedder, lexical mode", plain.svc, engine.RetrievalSettings{Mode: engine.SearchLexical}, engine.SearchLexical, false, "", true},
		{"no reranker", plain.svc, engine.RetrievalSettings{Mode: engine.SearchLexical, Rerank: true}, engine.SearchLexical, false, "reranking skipped: no rerank endpoint", true},
		{"fusion in lexical mode", f.svc, engine.RetrievalSettings{Mode: engine.SearchLexical, Fusion: engine.FusionAlpha}, engine.SearchLexical, false, "fusion settings (fusion, alpha, rrf_k) ignored", true},
		{"alpha with rrf", f.svc, engine.RetrievalSettings{Alpha: alpha(0.3)}, engine.SearchHybrid, false, "alpha ignored: it applies to alpha fusion only", true},
		{"rrf_k with alpha", f.svc, engine.RetrievalSettings{Fusion: engine.FusionAlpha, RRFK: 10}, engine.SearchHybrid, false, "rrf_k ignored", true},
		{"rerank fails", svcFailingRerank, engine.RetrievalSettings{Rerank: true, Limit: 2}, engine.SearchHybrid, false, "reranking failed (The rerank endpoint is down.): passages are in search order", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.svc.Retrieve(ctx, engine.RetrievalRequest{Query: hybridQuery, Settings: tt.set})
			if err != nil {
				t.Fatal(err)
			}
			a := res.Applied
			if a.Mode != tt.mode || a.Rerank != tt.rerank || (len(res.Passages) > 0) != tt.wantFound {
				t.Errorf("applied %+v with %d passages, want mode %s, rerank %v", a, len(res.Passages), tt.mode, tt.rerank)
			}
			switch {
			case tt.noteHas == "" && len(a.Notes) != 0:
				t.Errorf("notes = %q, want none", a.Notes)
			case tt.noteHas != "" && (len(a.Notes) != 1 || !strings.Contains(a.Notes[0], tt.noteHas)):
				t.Errorf("notes = %q, want one saying %q", a.Notes, tt.noteHas)
			}
			if a.Mode == engine.SearchLexical && (a.Fusion != "" || a.Alpha != nil || a.RRFK != 0) {
				t.Errorf("lexical search reports fusion settings: %+v", a)
			}
		})
	}
	// When reranking fails the limit still applies, in search order.
	res, err := svcFailingRerank.Retrieve(ctx, engine.RetrievalRequest{Query: hybridQuery, Settings: engine.RetrievalSettings{Rerank: true, Limit: 2}})
	if err != nil || len(res.Passages) != 2 || res.Passages[0].Document != "rotation.md" || res.Passages[0].Scores.Rerank != nil {
		t.Errorf("failed rerank = %+v, %v; want the 2 best of the search", res, err)
	}

	// An embedder failing on the query: lexical search, with a note.
	emb.set(func(e *embedder) { e.fail = engine.Errorf(engine.EUNAVAILABLE, "The embedding model is unavailable.") })
	res, err = f.svc.Retrieve(ctx, engine.RetrievalRequest{Query: hybridQuery})
	if err != nil || res.Applied.Mode != engine.SearchLexical || len(res.Passages) == 0 || len(res.Applied.Notes) != 1 ||
		!strings.Contains(res.Applied.Notes[0], "embedding the query failed (The embedding model is unavailable.)") {
		t.Errorf("Retrieve with a failing embedder = %+v, %v", res, err)
	}
	// A query embedded by another model (other dimensions): lexical, with a note.
	emb.set(func(e *embedder) { e.fail, e.dims = nil, 8 })
	res, err = f.svc.Retrieve(ctx, engine.RetrievalRequest{Query: hybridQuery, KnowledgeBases: []string{"docs"}})
	if err != nil || res.Applied.Mode != engine.SearchLexical || len(res.Passages) == 0 || len(res.Applied.Notes) != 1 ||
		!strings.Contains(res.Applied.Notes[0], "reindex the knowledge base") {
		t.Errorf("Retrieve with another model's query vector = %+v, %v", res, err)
	}
	// A canceled request is an error, not a note.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.svc.Retrieve(canceled, engine.RetrievalRequest{Query: hybridQuery}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Retrieve = %v, want context.Canceled", err)
	}
}

func TestRetrieveRejectsBadSettings(t *testing.T) {
	f, _ := MustHybridService(t, nil)
	for _, set := range []engine.RetrievalSettings{
		{Mode: "semantic"},
		{Fusion: "max"},
		{Alpha: alpha(1.5)},
		{Alpha: alpha(math.NaN())},
		{RRFK: -1},
		{Limit: 51},
		{MinScore: math.NaN()},
	} {
		if _, err := f.svc.Retrieve(context.Background(), engine.RetrievalRequest{Query: "rotate", Settings: set}); engine.ErrorCode(err) != engine.EINVALID {
			t.Errorf("settings %+v: Retrieve = %v, want EINVALID", set, err)
		}
	}
}

// TestIngestEmbeds: chunks are embedded in batches with their title and
// headings, and stored with their vectors.
func TestIngestEmbeds(t *testing.T) {
	f := MustService(t, knowledge.Config{ChunkSize: 100, ChunkOverlap: -1})
	emb := &embedder{}
	svc, err := knowledge.New(knowledge.Config{ChunkSize: 100, ChunkOverlap: -1, EmbedBatchSize: 2},
		knowledge.Deps{Store: f.store, Index: f.index, Embedder: emb})
	if err != nil {
		t.Fatal(err)
	}
	content := "# Guide\n\n## Backups\n\n"
	for _, w := range []string{"index", "database", "uploads", "settings", "logs", "traces"} {
		content += "Archive the " + w + " file every night and keep the copies.\n\n"
	}
	doc, err := svc.Ingest(context.Background(), "docs", "guide.md", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Chunks < 3 || emb.texts() != doc.Chunks || len(emb.calls) != (doc.Chunks+1)/2 {
		t.Errorf("%d chunks embedded in %d calls of %d texts, want batches of 2", doc.Chunks, len(emb.calls), emb.texts())
	}
	if first := emb.calls[0][0]; !strings.HasPrefix(first, "Guide › Backups\n\n") {
		t.Errorf("embedded text %q, want the title and heading path first", first)
	}
	// Each chunk is stored with the vector of its text.
	for i, text := range slices.Concat(emb.calls...) {
		got := indextest.MustSearch(t, f.index, knowledge.Query{Vector: indextest.Embed(text), Mode: engine.SearchVector, Limit: 1})
		if len(got) != 1 || got[0].ID != knowledge.ChunkID(doc.ID, i) || math.Abs(got[0].Score-1) > 1e-3 {
			t.Errorf("chunk %d: vector search for its text = %+v", i, got)
		}
	}
}

// TestIngestEmbeddingFailure: a document whose chunks cannot be embedded
// fails whole, with a reason, and leaves nothing in the index.
func TestIngestEmbeddingFailure(t *testing.T) {
	tests := []struct {
		name   string
		set    func(e *embedder)
		code   string
		msgHas string
	}{
		{"unavailable", func(e *embedder) { e.fail = engine.Errorf(engine.EUNAVAILABLE, "The embedding model is unavailable.") }, engine.EUNAVAILABLE,
			"Embedding ops.md failed: The embedding model is unavailable. Add it again once the embedding model works."},
		{"internal", func(e *embedder) { e.fail = errors.New("socket closed") }, engine.EUNAVAILABLE, "Embedding ops.md failed"},
		{"not configured", func(e *embedder) { e.fail = engine.Errorf(engine.EINVALID, "llm.embedding_model is not set.") }, engine.EINVALID, "llm.embedding_model is not set"},
		{"vector missing", func(e *embedder) { e.short = true }, engine.EUNAVAILABLE, "returned 0 vectors for 1 chunks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := MustService(t, knowledge.Config{})
			emb := &embedder{}
			svc := mustNewWith(t, f, emb)
			old := f.MustIngest(t, "docs", "ops.md", "# Ops\n\nBack up nightly.\n") // indexed without vectors by f.svc
			emb.set(tt.set)
			doc, err := svc.Ingest(ctx, "docs", "ops.md", []byte("# Ops\n\nBack up the index every night.\n"))
			if engine.ErrorCode(err) != tt.code || !strings.Contains(engine.ErrorMessage(err), tt.msgHas) {
				t.Fatalf("Ingest = %v (%q), want code %s saying %q", err, engine.ErrorMessage(err), tt.code, tt.msgHas)
			}
			if doc == nil || doc.Status != engine.DocumentFailed || !strings.Contains(doc.Error, tt.msgHas) {
				t.Errorf("document = %+v, want failed with the reason", doc)
			}
			stored, _ := f.store.DocumentByID(ctx, old.ID)
			if stored.Status != engine.DocumentFailed || docChunks(t, f.index, "docs", old.ID) != 0 {
				t.Errorf("stored %+v with %d chunks indexed, want failed and nothing indexed", stored, docChunks(t, f.index, "docs", old.ID))
			}
		})
	}
}

func mustNewWith(tb testing.TB, f *fixture, emb engine.Embedder) *knowledge.Service {
	tb.Helper()
	svc, err := knowledge.New(knowledge.Config{}, knowledge.Deps{Store: f.store, Index: f.index, Embedder: emb})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

// TestReindexEmbeds: configuring an embedding model, or changing it for
// one of other dimensions, needs a reindex only, no upload.
func TestReindexEmbeds(t *testing.T) {
	ctx := context.Background()
	f := MustService(t, knowledge.Config{})
	for _, src := range []string{"ops.md", "renewal.md", "rotation.md"} {
		f.MustIngest(t, "docs", src, hybridDocs[src]) // no embedder: no vectors
	}
	f.MustIngest(t, "other", "ops.md", hybridDocs["ops.md"])
	vectorSearch := func(svc *knowledge.Service, query string) *engine.Retrieval {
		t.Helper()
		res, err := svc.Retrieve(ctx, engine.RetrievalRequest{Query: query, KnowledgeBases: []string{"docs"}, Settings: engine.RetrievalSettings{Mode: engine.SearchVector}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	emb := &embedder{}
	svc := mustNewWith(t, f, emb)
	if res := vectorSearch(svc, backupQuery); len(res.Passages) != 0 {
		t.Fatalf("before the reindex vector search found %q", documents(res.Passages))
	}
	report, err := svc.Reindex(ctx, "docs")
	if err != nil || len(report.OK) != 3 || len(report.Failed) != 0 {
		t.Fatalf("Reindex = %+v, %v", report, err)
	}
	if res := vectorSearch(svc, backupQuery); top(res) != "ops.md" || res.Applied.Mode != engine.SearchVector {
		t.Errorf("after the reindex vector search = %q (%+v), want ops.md", documents(res.Passages), res.Applied)
	}

	// Another model, with vectors of 8 dimensions: the reindex clears the
	// knowledge base and embeds everything again.
	other := &embedder{dims: 8}
	svc8 := mustNewWith(t, f, other)
	if _, err := svc8.Ingest(ctx, "docs", "new.md", []byte("# New\n\nRotate keys.\n")); !errors.Is(err, knowledge.ErrDimensions) {
		t.Errorf("Ingest with another model's dimensions = %v, want ErrDimensions", err)
	}
	report, err = svc8.Reindex(ctx, "docs")
	if err != nil || len(report.OK) != 4 || len(report.Failed) != 0 {
		t.Fatalf("Reindex with another model = %+v, %v; want all 4 documents", report, err)
	}
	res := vectorSearch(svc8, "renew secret password")
	if len(res.Passages) == 0 || res.Applied.Mode != engine.SearchVector || len(res.Applied.Notes) != 0 {
		t.Errorf("after reindexing with the 8-dimension model: %+v", res)
	}
	if docs := indextest.MustDocuments(t, f.index, ""); len(docs) != 5 {
		t.Errorf("index holds %v, want the 4 documents of docs and the one of other", docs)
	}
	// The other knowledge base kept its (unembedded) chunks.
	if docs := indextest.MustDocuments(t, f.index, "other"); len(docs) != 1 {
		t.Errorf("other knowledge base = %v", docs)
	}
}

// TestSyncEmbeds: Sync indexes pending documents with their vectors.
func TestSyncEmbeds(t *testing.T) {
	ctx := context.Background()
	f := MustService(t, knowledge.Config{})
	pending := &engine.Document{KnowledgeBase: "docs", Source: "ops.md", ContentType: knowledge.ContentTypeMarkdown,
		Content: []byte(hybridDocs["ops.md"]), Status: engine.DocumentPending}
	if err := f.store.SaveDocument(ctx, pending); err != nil {
		t.Fatal(err)
	}
	emb := &embedder{}
	svc := mustNewWith(t, f, emb)
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Retrieve(ctx, engine.RetrievalRequest{Query: backupQuery, Settings: engine.RetrievalSettings{Mode: engine.SearchVector}})
	if err != nil || top(res) != "ops.md" {
		t.Errorf("vector search after Sync = %+v, %v", res, err)
	}
}

func TestEmbedText(t *testing.T) {
	tests := []struct {
		title    string
		headings []string
		want     string
	}{
		{"Guide", []string{"Guide", "Setup"}, "Guide › Setup\n\ntext"},
		{"Guide", nil, "Guide\n\ntext"},
		{"", []string{"A", " ", "B"}, "A › B\n\ntext"},
		{"", nil, "text"},
	}
	for _, tt := range tests {
		if got := knowledge.EmbedText(tt.title, tt.headings, "text"); got != tt.want {
			t.Errorf("EmbedText(%q, %q) = %q, want %q", tt.title, tt.headings, got, tt.want)
		}
	}
}
