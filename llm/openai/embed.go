package openai

import (
	"context"
	"strings"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/convosphere/convosphere/engine"
)

// Embed returns one vector per text, in input order. Texts are sent in
// batches of EmbeddingBatchSize, each with the retry policy.
func (p *Provider) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	model := p.cfg.EmbeddingModel
	if model == "" {
		return nil, engine.Errorf(engine.EINVALID, "%s is not set: name the embeddings model, e.g. text-embedding-3-small or nomic-embed-text.", p.cfg.setting("embedding_model"))
	}
	out := make([][]float32, len(texts))
	dims := 0
	for start := 0; start < len(texts); start += p.cfg.EmbeddingBatchSize {
		end := min(start+p.cfg.EmbeddingBatchSize, len(texts))
		input := make([]string, 0, end-start)
		for _, t := range texts[start:end] {
			if strings.TrimSpace(t) == "" {
				t = " " // OpenAI rejects empty strings
			}
			input = append(input, t)
		}
		var resp goopenai.EmbeddingResponse
		err := p.do(ctx, opEmbed, model, func(ctx context.Context) error {
			var err error
			resp, err = p.client.CreateEmbeddings(ctx, goopenai.EmbeddingRequest{Input: input, Model: goopenai.EmbeddingModel(model)})
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(resp.Data) != len(input) {
			return nil, engine.Errorf(engine.EUNAVAILABLE, "The embedding model returned %d vectors for %d texts.", len(resp.Data), len(input))
		}
		for _, d := range resp.Data {
			i := start + d.Index
			switch {
			case d.Index < 0 || d.Index >= len(input) || out[i] != nil:
				return nil, engine.Errorf(engine.EUNAVAILABLE, "The embedding model returned a vector with an unexpected index (%d).", d.Index)
			case len(d.Embedding) == 0:
				return nil, engine.Errorf(engine.EUNAVAILABLE, "The embedding model returned an empty vector.")
			case dims != 0 && len(d.Embedding) != dims:
				return nil, engine.Errorf(engine.EUNAVAILABLE, "The embedding model returned vectors of different sizes (%d and %d).", dims, len(d.Embedding))
			}
			dims = len(d.Embedding)
			out[i] = d.Embedding
		}
	}
	return out, nil
}
