package indextest

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// The vector and hybrid cases embed chunks with Embed: vector scores are
// the same for every backend (cosine similarity of the same vectors), so
// vector ranks are exact; lexical scores differ between BM25
// implementations, so the cases only rely on lexical orders with wide
// margins.

// EmbedText is the text of a chunk the suite embeds: its title, headings
// and text.
func EmbedText(c knowledge.Chunk) string {
	return strings.Join(append(append([]string{c.Title}, c.HeadingPath...), c.Text), "\n")
}

// WithVectors returns chunks with Vector set to Embed(EmbedText(chunk)).
func WithVectors(chunks []knowledge.Chunk) []knowledge.Chunk {
	out := slices.Clone(chunks)
	for i := range out {
		out[i].Vector = Embed(EmbedText(out[i]))
	}
	return out
}

func loadCorpusWithVectors(tb testing.TB, ix knowledge.Index) {
	tb.Helper()
	for _, d := range corpus {
		MustUpsert(tb, ix, WithVectors(d.chunks()))
	}
}

// hybridQuery is the question of the hybrid corpus: "rotate" and
// "credentials" have synonyms in Embed's concept groups, "api" does not.
const hybridQuery = "rotate api credentials"

// hybridCorpus is built so that fusion beats both single signals for
// hybridQuery. Lexically, hyb-lexical has all three words, hyb-target two,
// the others none. By cosine similarity with Embed(hybridQuery) the order
// is hyb-vector (0.82: only synonyms), hyb-target (0.80), hyb-filler
// (0.65), hyb-lexical (0.52: its words are diluted by many others),
// hyb-far (0.20). Reciprocal rank fusion with k = 60 puts hyb-target,
// second in both lists, first (2/62 > 1/61 + 1/64); with k = 1 it puts
// hyb-lexical first (1/2 + 1/5 > 2/3).
var hybridCorpus = []doc{
	{kb: "hybrid", id: "hyb-lexical", source: "lighthouse.md", sections: []section{
		{nil, "Rotate the api dial to list credentials for the lighthouse keeper, ferry captain and coast guard."},
	}},
	{kb: "hybrid", id: "hyb-target", source: "rotation.md", sections: []section{
		{nil, "Rotate the credentials: renew each secret and cycle every token monthly."},
	}},
	{kb: "hybrid", id: "hyb-vector", source: "renewal.md", sections: []section{
		{nil, "Renew the secret and cycle the password."},
	}},
	{kb: "hybrid", id: "hyb-filler", source: "vault.md", sections: []section{
		{nil, "Refresh a secret key for the vault door."},
	}},
	{kb: "hybrid", id: "hyb-far", source: "museum.md", sections: []section{
		{nil, "Cycle through the museum galleries, gardens, fountains, statues, bridges and towers."},
	}},
}

func loadHybridCorpus(tb testing.TB, ix knowledge.Index) {
	tb.Helper()
	for _, d := range hybridCorpus {
		MustUpsert(tb, ix, WithVectors(d.chunks()))
	}
}

func hybridID(name string) string { return knowledge.ChunkID("hyb-"+name, 0) }

func testVectorFindsMeaning(t *testing.T, ix knowledge.Index) {
	loadCorpusWithVectors(t, ix)
	// No word of the query is in the corpus: only the meaning matches.
	const query = "archive snapshots at midnight"
	if got := MustSearch(t, ix, knowledge.Query{Text: query, Mode: engine.SearchLexical}); len(got) != 0 {
		t.Fatalf("lexical search for %q found %q: the premise of the case is broken", query, ids(got))
	}
	got := MustSearch(t, ix, knowledge.Query{Text: query, Vector: Embed(query), Mode: engine.SearchVector, KnowledgeBases: []string{"docs"}})
	if len(got) == 0 || got[0].ID != knowledge.ChunkID("doc-ops", 0) {
		t.Fatalf("vector search for %q = %q, want doc-ops first", query, ids(got))
	}
	want := corpusDoc("doc-ops").chunks()[0]
	if p := got[0]; p.DocumentID != want.DocumentID || p.Document != want.Document || p.Title != want.Title || p.Text != want.Text || p.KnowledgeBase != "docs" {
		t.Errorf("passage = %+v, want the fields of chunk %+v", p, want)
	}
	// Hybrid search finds it too, from the vector signal alone.
	got = MustSearch(t, ix, knowledge.Query{Text: query, Vector: Embed(query), KnowledgeBases: []string{"docs"}})
	if len(got) == 0 || got[0].ID != want.ID || got[0].Scores.Lexical != nil || got[0].Scores.Vector == nil {
		t.Errorf("hybrid search for %q = %+v, want doc-ops first, found by its vector only", query, got)
	}
}

func testVectorScores(t *testing.T, ix knowledge.Index) {
	loadCorpusWithVectors(t, ix)
	target := WithVectors(corpusDoc("doc-discord").chunks())[1]
	q := knowledge.Query{Vector: target.Vector, Mode: engine.SearchVector, KnowledgeBases: []string{"docs"}, Limit: 50}
	got := MustSearch(t, ix, q)
	if len(got) == 0 || got[0].ID != target.ID || math.Abs(got[0].Score-1) > 1e-3 {
		t.Fatalf("searching a chunk's own vector = %+v, want %s first with score 1", got, target.ID)
	}
	// Every score is the cosine similarity, and every chunk of the
	// knowledge base with a positive similarity is found.
	want := map[string]float64{}
	for _, d := range corpus {
		if d.kb != "docs" {
			continue
		}
		for _, c := range WithVectors(d.chunks()) {
			if s := Cosine(c.Vector, target.Vector); s > 1e-6 {
				want[c.ID] = s
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("found %q, want the %d chunks with a positive similarity", ids(got), len(want))
	}
	for _, p := range got {
		if s, ok := want[p.ID]; !ok || math.Abs(p.Score-s) > 1e-3 {
			t.Errorf("%s scored %v, want its cosine similarity %v", p.ID, p.Score, s)
		}
	}
	// Limit and MinScore apply to vector search.
	if got := MustSearch(t, ix, knowledge.Query{Vector: target.Vector, Mode: engine.SearchVector, Limit: 2}); len(got) != 2 || got[0].ID != target.ID {
		t.Errorf("Limit 2 returned %q", ids(got))
	}
	if len(got) >= 2 {
		cut := got[1].Score
		q.MinScore = cut
		for _, p := range MustSearch(t, ix, q) {
			if p.Score < cut {
				t.Errorf("MinScore %v returned %s scoring %v", cut, p.ID, p.Score)
			}
		}
	}
}

func testHybridBeatsSingleModes(t *testing.T, ix knowledge.Index) {
	loadCorpus(t, ix) // other knowledge bases, without vectors, stay out of the way
	loadHybridCorpus(t, ix)
	kbs := []string{"hybrid"}
	lexical := MustSearch(t, ix, knowledge.Query{Text: hybridQuery, KnowledgeBases: kbs})
	if len(lexical) < 2 || lexical[0].ID != hybridID("lexical") || lexical[1].ID != hybridID("target") {
		t.Fatalf("lexical ranking = %q, want hyb-lexical then hyb-target", ids(lexical))
	}
	vector := MustSearch(t, ix, knowledge.Query{Text: hybridQuery, Vector: Embed(hybridQuery), Mode: engine.SearchVector, KnowledgeBases: kbs})
	wantVector := []string{hybridID("vector"), hybridID("target"), hybridID("filler"), hybridID("lexical"), hybridID("far")}
	if !slices.Equal(ids(vector), wantVector) {
		t.Fatalf("vector ranking = %q, want %q", ids(vector), wantVector)
	}
	hybrid := MustSearch(t, ix, knowledge.Query{Text: hybridQuery, Vector: Embed(hybridQuery), KnowledgeBases: kbs})
	if len(hybrid) == 0 || hybrid[0].ID != hybridID("target") {
		t.Fatalf("hybrid ranking = %q, want hyb-target first", ids(hybrid))
	}
	// Every candidate of either list is in the fused list.
	if len(hybrid) != len(hybridCorpus) {
		t.Errorf("hybrid search returned %q, want all %d chunks", ids(hybrid), len(hybridCorpus))
	}
	// The signals that found each passage are reported.
	for _, p := range hybrid {
		foundLexically := p.ID == hybridID("lexical") || p.ID == hybridID("target")
		if (p.Scores.Lexical != nil) != foundLexically || p.Scores.Vector == nil || p.Scores.Fused == nil {
			t.Errorf("%s scores = %s, want lexical %v, vector and fused set", p.ID, scoresString(p.Scores), foundLexically)
		}
		if p.Scores.Vector != nil && math.Abs(*p.Scores.Vector-vectorScore(vector, p.ID)) > 1e-6 {
			t.Errorf("%s vector score %v differs from vector search's %v", p.ID, *p.Scores.Vector, vectorScore(vector, p.ID))
		}
	}
	// The best possible fused score is 1: first in both lists.
	for _, fusion := range []string{engine.FusionRRF, engine.FusionAlpha} {
		own := WithVectors(corpusDoc("hyb-lexical").chunks())[0]
		got := MustSearch(t, ix, knowledge.Query{Text: hybridQuery, Vector: own.Vector, Fusion: fusion, Alpha: 0.5, KnowledgeBases: kbs})
		if len(got) == 0 || got[0].ID != own.ID || math.Abs(got[0].Score-1) > 1e-6 {
			t.Errorf("%s: a chunk first in both lists = %+v, want score 1", fusion, got)
		}
	}
}

func vectorScore(ps []engine.Passage, id string) float64 {
	for _, p := range ps {
		if p.ID == id {
			return p.Score
		}
	}
	return math.NaN()
}

func testRRFK(t *testing.T, ix knowledge.Index) {
	loadHybridCorpus(t, ix)
	tests := []struct {
		k     int
		first string
	}{
		{1, "lexical"}, // being first somewhere counts most
		{60, "target"}, // being found by both counts most
		{0, "target"},  // the default is 60
		{1000, "target"},
	}
	for _, tt := range tests {
		got := MustSearch(t, ix, knowledge.Query{Text: hybridQuery, Vector: Embed(hybridQuery), RRFK: tt.k, KnowledgeBases: []string{"hybrid"}})
		if len(got) == 0 || got[0].ID != hybridID(tt.first) {
			t.Errorf("RRF k %d ranked %q, want hyb-%s first", tt.k, ids(got), tt.first)
		}
		k := tt.k
		if k == 0 {
			k = knowledge.DefaultRRFK
		}
		// hyb-vector is first in the vector list only.
		if s := vectorScore(got, hybridID("vector")); math.Abs(s-0.5) > 1e-9 {
			t.Errorf("RRF k %d: a passage first in one list scored %v, want 0.5", tt.k, s)
		}
		// hyb-target is second in both lists.
		if s, want := vectorScore(got, hybridID("target")), float64(k+1)/float64(k+2); math.Abs(s-want) > 1e-9 {
			t.Errorf("RRF k %d: a passage second in both lists scored %v, want (k+1)/(k+2) = %v", tt.k, s, want)
		}
	}
}

func testAlphaExtremes(t *testing.T, ix knowledge.Index) {
	loadCorpusWithVectors(t, ix)
	loadHybridCorpus(t, ix)
	for _, query := range []string{"connect slack bot token", "How do I connect Slack?", hybridQuery, "reindex knowledge archive"} {
		for _, limit := range []int{3, 10} {
			base := knowledge.Query{Text: query, Vector: Embed(query), Limit: limit}
			lexical := base
			lexical.Mode = engine.SearchLexical
			vector := base
			vector.Mode = engine.SearchVector
			alpha := base
			alpha.Fusion = engine.FusionAlpha
			alpha.Alpha = 0
			if got, want := ids(MustSearch(t, ix, alpha)), ids(MustSearch(t, ix, lexical)); !slices.Equal(got, want) {
				t.Errorf("%q limit %d: alpha 0 ranked %q, want the lexical ranking %q", query, limit, got, want)
			}
			alpha.Alpha = 1
			if got, want := ids(MustSearch(t, ix, alpha)), ids(MustSearch(t, ix, vector)); !slices.Equal(got, want) {
				t.Errorf("%q limit %d: alpha 1 ranked %q, want the vector ranking %q", query, limit, got, want)
			}
		}
	}
	// Between the extremes the weights move the target: hyb-lexical leads
	// at alpha 0, hyb-vector at alpha 1.
	for _, tt := range []struct {
		alpha float64
		first string
	}{{0, "lexical"}, {1, "vector"}} {
		got := MustSearch(t, ix, knowledge.Query{Text: hybridQuery, Vector: Embed(hybridQuery), Fusion: engine.FusionAlpha, Alpha: tt.alpha, KnowledgeBases: []string{"hybrid"}})
		if len(got) == 0 || got[0].ID != hybridID(tt.first) {
			t.Errorf("alpha %v ranked %q, want hyb-%s first", tt.alpha, ids(got), tt.first)
		}
	}
}

func testHybridMinScore(t *testing.T, ix knowledge.Index) {
	loadCorpusWithVectors(t, ix)
	loadHybridCorpus(t, ix)
	for _, fusion := range []string{engine.FusionRRF, engine.FusionAlpha} {
		q := knowledge.Query{Text: "connect slack bot token", Vector: Embed("connect slack bot token"), Fusion: fusion, Alpha: 0.5, Limit: 50}
		all := MustSearch(t, ix, q)
		if len(all) < 3 {
			t.Fatalf("%s: found %d passages, want at least 3", fusion, len(all))
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
		if len(got) != want || got[0].ID != all[0].ID {
			t.Errorf("%s: MinScore %v returned %q, want the %d passages whose fused score is at least that", fusion, cut, ids(got), want)
		}
		q.MinScore = 1.5
		if got := MustSearch(t, ix, q); len(got) != 0 {
			t.Errorf("%s: MinScore 1.5 returned %q, want nothing", fusion, ids(got))
		}
	}
}

func testVectorFilter(t *testing.T, ix knowledge.Index) {
	loadCorpusWithVectors(t, ix)
	tests := []struct {
		kbs  []string
		want []string // documents found for "slack threads"
	}{
		{[]string{"docs"}, []string{"doc-slack"}},
		{[]string{"other"}, []string{"doc-etiquette"}},
		{[]string{"docs", "other"}, []string{"doc-etiquette", "doc-slack"}},
		{nil, []string{"doc-etiquette", "doc-slack"}},
		{[]string{"missing"}, nil},
	}
	for _, tt := range tests {
		for _, mode := range []string{engine.SearchVector, engine.SearchHybrid} {
			t.Run(mode+"/"+strings.Join(tt.kbs, "+"), func(t *testing.T) {
				got := MustSearch(t, ix, knowledge.Query{Text: "slack threads", Vector: Embed("slack threads"), Mode: mode, KnowledgeBases: tt.kbs, Limit: 50})
				if d := docIDs(got); !slices.Equal(d, tt.want) {
					t.Errorf("documents found = %q, want %q", d, tt.want)
				}
			})
		}
	}
}

func testVectorFollowsWrites(t *testing.T, ix knowledge.Index) {
	ctx := context.Background()
	loadCorpusWithVectors(t, ix)
	const query = "archive snapshots"
	q := knowledge.Query{Vector: Embed(query), Mode: engine.SearchVector}
	if got := MustSearch(t, ix, q); len(got) != 1 || got[0].DocumentID != "doc-ops" {
		t.Fatalf("vector search = %q, want doc-ops only", ids(got))
	}
	if err := ix.DeleteDocument(ctx, "docs", "doc-ops"); err != nil {
		t.Fatal(err)
	}
	if got := MustSearch(t, ix, q); len(got) != 0 {
		t.Errorf("after DeleteDocument vector search = %q, want nothing", ids(got))
	}
	// A document replaced with new text is found by its new vectors only.
	d := corpusDoc("doc-knowledge")
	d.sections = []section{{[]string{"Knowledge bases"}, "Keep an archive of every snapshot."}}
	MustUpsert(t, ix, WithVectors(d.chunks()))
	if got := MustSearch(t, ix, q); len(got) != 1 || got[0].ID != knowledge.ChunkID("doc-knowledge", 0) {
		t.Errorf("after replacing doc-knowledge vector search = %q, want its new chunk", ids(got))
	}
	if got := MustSearch(t, ix, knowledge.Query{Vector: Embed("reindex chunk settings"), Mode: engine.SearchVector}); slices.Contains(ids(got), knowledge.ChunkID("doc-knowledge", 1)) {
		t.Errorf("the replaced chunk doc-knowledge:1 is still found: %q", ids(got))
	}
	if err := ix.DeleteKnowledgeBase(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	if got := MustSearch(t, ix, q); len(got) != 0 {
		t.Errorf("after DeleteKnowledgeBase vector search = %q, want nothing", ids(got))
	}
}

func testChunksWithoutVectors(t *testing.T, ix knowledge.Index) {
	loadCorpusWithVectors(t, ix)
	MustUpsert(t, ix, corpusDoc("doc-ops").chunks()) // replaced by chunks without vectors
	const query = "back up the database file"
	vec := Embed(query)
	for _, p := range MustSearch(t, ix, knowledge.Query{Vector: vec, Mode: engine.SearchVector, Limit: 50}) {
		if p.DocumentID == "doc-ops" {
			t.Errorf("vector search found %s, which has no vector", p.ID)
		}
	}
	got := MustSearch(t, ix, knowledge.Query{Text: query, Vector: vec, Limit: 50})
	if len(got) == 0 || got[0].DocumentID != "doc-ops" || got[0].Scores.Vector != nil || got[0].Scores.Lexical == nil {
		t.Errorf("hybrid search = %+v, want doc-ops first, found lexically only", got)
	}
}

func testDimensions(t *testing.T, ix knowledge.Index) {
	ctx := context.Background()
	loadCorpusWithVectors(t, ix)
	short := func(c knowledge.Chunk, dims int) knowledge.Chunk {
		c.Vector = make([]float32, dims)
		c.Vector[0] = 1
		return c
	}
	isDims := func(err error) bool {
		return engine.ErrorCode(err) == engine.EINVALID && errors.Is(err, knowledge.ErrDimensions)
	}
	extra := doc{kb: "docs", id: "doc-extra", source: "extra.md", title: "Extra", sections: []section{
		{nil, "Rotate the credentials."}, {nil, "Archive the snapshots."},
	}}
	// Another size than the knowledge base holds.
	chunks := WithVectors(extra.chunks())
	for i := range chunks {
		chunks[i] = short(chunks[i], 8)
	}
	if err := ix.Upsert(ctx, chunks); !isDims(err) {
		t.Errorf("Upsert of 8-dimension vectors into a %d-dimension knowledge base = %v, want EINVALID with ErrDimensions", Dims, err)
	}
	// Two sizes in one batch.
	chunks = WithVectors(extra.chunks())
	chunks[1] = short(chunks[1], 8)
	if err := ix.Upsert(ctx, chunks); !isDims(err) {
		t.Errorf("Upsert of mixed dimensions = %v, want EINVALID with ErrDimensions", err)
	}
	// Not finite.
	chunks = WithVectors(extra.chunks())
	chunks[0].Vector[3] = float32(math.NaN())
	if err := ix.Upsert(ctx, chunks); engine.ErrorCode(err) != engine.EINVALID {
		t.Errorf("Upsert of a NaN vector = %v, want EINVALID", err)
	}
	if _, ok := MustDocuments(t, ix, "docs")["docs/doc-extra"]; ok {
		t.Error("a rejected upsert stored doc-extra")
	}
	// Another knowledge base may use another size.
	chunks = extra.chunks()
	for i := range chunks {
		chunks[i].KnowledgeBase = "small"
		chunks[i] = short(chunks[i], 8)
	}
	MustUpsert(t, ix, chunks)
	// A query of the wrong size for a knowledge base it searches.
	q := knowledge.Query{Text: "rotate", Vector: short(chunks[0], 8).Vector, Mode: engine.SearchVector, KnowledgeBases: []string{"docs"}}
	if _, err := ix.Search(ctx, q); !isDims(err) {
		t.Errorf("8-dimension query of a %d-dimension knowledge base = %v, want EINVALID with ErrDimensions", Dims, err)
	}
	q.Mode = engine.SearchHybrid
	if _, err := ix.Search(ctx, q); !isDims(err) {
		t.Errorf("8-dimension hybrid query of a %d-dimension knowledge base = %v, want EINVALID with ErrDimensions", Dims, err)
	}
	q.KnowledgeBases = []string{"small"}
	if got := MustSearch(t, ix, q); len(got) == 0 {
		t.Error("8-dimension query of the 8-dimension knowledge base found nothing")
	}
	// A knowledge base emptied by DeleteKnowledgeBase takes a new size.
	if err := ix.DeleteKnowledgeBase(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	chunks = extra.chunks()
	for i := range chunks {
		chunks[i] = short(chunks[i], 8)
	}
	MustUpsert(t, ix, chunks)
	q.KnowledgeBases = []string{"docs"}
	if got := MustSearch(t, ix, q); len(got) == 0 {
		t.Error("after DeleteKnowledgeBase the knowledge base's new vectors are not found")
	}
}

func testInvalidQueries(t *testing.T, ix knowledge.Index) {
	loadCorpusWithVectors(t, ix)
	vec := Embed("slack")
	tests := []struct {
		name string
		q    knowledge.Query
	}{
		{"vector without vector", knowledge.Query{Text: "slack", Mode: engine.SearchVector}},
		{"hybrid without vector", knowledge.Query{Text: "slack", Mode: engine.SearchHybrid}},
		{"unknown mode", knowledge.Query{Text: "slack", Mode: "semantic"}},
		{"unknown fusion", knowledge.Query{Text: "slack", Vector: vec, Fusion: "max"}},
		{"alpha above 1", knowledge.Query{Text: "slack", Vector: vec, Fusion: engine.FusionAlpha, Alpha: 1.5}},
		{"negative alpha", knowledge.Query{Text: "slack", Vector: vec, Fusion: engine.FusionAlpha, Alpha: -0.1}},
		{"NaN in vector", knowledge.Query{Text: "slack", Vector: []float32{float32(math.NaN())}, Mode: engine.SearchVector}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ix.Search(context.Background(), tt.q)
			if code := engine.ErrorCode(err); code != engine.EINVALID {
				t.Errorf("Search = %q, %v (code %q), want code %q", ids(got), err, code, engine.EINVALID)
			}
		})
	}
	// Lexical mode ignores a vector; an empty mode means hybrid with one.
	if got := MustSearch(t, ix, knowledge.Query{Text: "socket mode", Vector: vec, Mode: engine.SearchLexical}); len(got) == 0 || got[0].Scores.Vector != nil {
		t.Errorf("lexical search with a vector = %+v, want lexical results only", got)
	}
	if got := MustSearch(t, ix, knowledge.Query{Text: "socket mode", Vector: vec}); len(got) == 0 || got[0].Scores.Fused == nil {
		t.Errorf("search with a vector and no mode = %+v, want hybrid results", got)
	}
}
