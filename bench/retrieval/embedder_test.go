package main

import (
	"context"
	"math"
	"slices"
	"testing"
)

func cosine(a, b []float32) float64 {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return dot
}

func TestHashEmbedder(t *testing.T) {
	vs, err := HashEmbedder{}.Embed(context.Background(), []string{
		"copy files and directories", "copy files and directories", "copying a file", "kernel random number source devices", "",
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if len(v) != 384 {
			t.Fatalf("vector %d has %d dimensions", i, len(v))
		}
		if n := cosine(v, v); math.Abs(n-1) > 1e-5 {
			t.Errorf("vector %d has norm² %g, want 1", i, n)
		}
	}
	if !slices.Equal(vs[0], vs[1]) {
		t.Error("the same text gave two vectors")
	}
	if near, far := cosine(vs[0], vs[2]), cosine(vs[0], vs[3]); near <= far {
		t.Errorf("cos(copy files, copying a file) = %.3f is not above cos(copy files, kernel random) = %.3f", near, far)
	}
}

func TestExpandSystems(t *testing.T) {
	got, err := expandSystems("weaviate-bm25,embedded")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"embedded-lexical", "embedded-hybrid", "weaviate-bm25"}
	if !slices.Equal(got, want) {
		t.Errorf("expandSystems = %v, want %v", got, want)
	}
	if got, _ := expandSystems("none"); len(got) != 0 {
		t.Errorf("none = %v", got)
	}
	if _, err := expandSystems("elastic"); err == nil {
		t.Error("an unknown system was accepted")
	}
	if got, _ := parseSizes("1M, 10k"); !slices.Equal(got, []string{"1m", "10k"}) {
		t.Errorf("parseSizes = %v", got)
	}
	if _, err := parseSizes("5"); err == nil {
		t.Error("an unknown size was accepted")
	}
}
