package embedded

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestEncodeVector(t *testing.T) {
	v := []float32{0, 1, -1.5, float32(math.Pi), math.MaxFloat32, math.SmallestNonzeroFloat32}
	b := encodeVector(v)
	if len(b) != 4*len(v) || b[4] != 0 || b[7] != 0x3f { // 1.0 is 0x3f800000, little-endian
		t.Errorf("encodeVector = % x", b)
	}
	if got := decodeVector(nil, b); !slices.Equal(got, v) {
		t.Errorf("decodeVector = %v, want %v", got, v)
	}
}

func TestNormalize(t *testing.T) {
	v := []float32{3, 4}
	normalize(v)
	if math.Abs(float64(v[0])-0.6) > 1e-7 || math.Abs(float64(v[1])-0.8) > 1e-7 {
		t.Errorf("normalize(3, 4) = %v", v)
	}
	zero := []float32{0, 0}
	normalize(zero)
	if zero[0] != 0 || zero[1] != 0 {
		t.Errorf("normalize(0, 0) = %v", zero)
	}
}

// TestNearest compares nearest with sorting every similarity, on the one
// core path and on the parallel one.
func TestNearest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	makeSet := func(kb string, n, dims int) *kbVectors {
		s := &kbVectors{kb: kb, dims: dims}
		for i := range n {
			v := make([]float32, dims)
			for j := range v {
				v[j] = float32(rng.NormFloat64())
			}
			if i%50 == 0 {
				clear(v) // a zero vector matches nothing
			}
			normalize(v)
			s.vecs = append(s.vecs, v...)
			s.ids = append(s.ids, kb+":"+string(rune('A'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))
		}
		return s
	}
	tests := []struct {
		name     string
		n, dims  int
		k        int
		minScore float64
	}{
		{"small", 200, 16, 10, 0},
		{"k above matches", 30, 8, 100, 0},
		{"min score", 500, 16, 50, 0.3},
		{"parallel", 5000, 512, 25, 0}, // 2.5M multiply-adds: split between cores
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sets := []*kbVectors{makeSet("a", tt.n/2, tt.dims), makeSet("b", tt.n-tt.n/2, tt.dims)}
			q := make([]float32, tt.dims)
			for j := range q {
				q[j] = float32(rng.NormFloat64())
			}
			normalize(q)
			var all []vectorHit
			for _, s := range sets {
				for i, id := range s.ids {
					score := float64(dot(q, s.vecs[i*s.dims:(i+1)*s.dims]))
					if score > 0 && score >= tt.minScore {
						all = append(all, vectorHit{score: score, id: id})
					}
				}
			}
			slices.SortFunc(all, func(a, b vectorHit) int { return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.id, b.id)) })
			want := all[:min(tt.k, len(all))]
			got := nearest(sets, q, tt.k, tt.minScore)
			if !slices.Equal(got, want) {
				t.Errorf("nearest returned %d hits, want %d; first %v, want %v", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
			}
			for _, h := range got {
				if h.score <= 0 || h.score > 1 || h.score < tt.minScore {
					t.Errorf("hit %v out of range", h)
				}
			}
		})
	}
	if got := nearest(nil, []float32{1}, 5, 0); len(got) != 0 {
		t.Errorf("nearest of nothing = %v", got)
	}
}
