package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/convosphere/convosphere/engine"
)

// SaveModelProvider stores a model provider, replacing the one of the same
// name (keeping its CreatedAt). Only the sealed API key is stored.
func (db *DB) SaveModelProvider(ctx context.Context, p *engine.ModelProvider) error {
	if err := p.ValidateSealed(); err != nil {
		return err
	}
	if p.APIType == "" {
		p.APIType = engine.ModelAPIOpenAI
	}
	models, err := json.Marshal(p.Models)
	if err != nil {
		return fmt.Errorf("save model provider: %w", err)
	}
	sealed := p.APIKeySealed
	if sealed == nil {
		sealed = []byte{}
	}
	at := now()
	var created string
	err = db.w.QueryRowContext(ctx, `INSERT INTO model_providers (name, api_type, base_url, api_version, models, api_key_sealed, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET api_type = excluded.api_type, base_url = excluded.base_url, api_version = excluded.api_version,
			models = excluded.models, api_key_sealed = excluded.api_key_sealed, updated_at = excluded.updated_at
		RETURNING created_at`,
		p.Name, p.APIType, p.BaseURL, p.APIVersion, string(models), sealed, encTime(at), encTime(at)).Scan(&created)
	if err != nil {
		return fmt.Errorf("save model provider: %w", err)
	}
	if err := (timeCol{&p.CreatedAt}).Scan(created); err != nil {
		return fmt.Errorf("save model provider: %w", err)
	}
	p.UpdatedAt = at
	return nil
}

// DeleteModelProvider removes a model provider.
func (db *DB) DeleteModelProvider(ctx context.Context, name string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM model_providers WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete model provider: %w", err)
	}
	return affected(res, "Model provider", name)
}

// ModelProviders lists the model providers by name, with their sealed keys.
func (db *DB) ModelProviders(ctx context.Context) ([]*engine.ModelProvider, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name, api_type, base_url, api_version, models, api_key_sealed, created_at, updated_at
		FROM model_providers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list model providers: %w", err)
	}
	list, err := collect(rows, func(sc scanner) (*engine.ModelProvider, error) {
		var p engine.ModelProvider
		var models string
		if err := sc.Scan(&p.Name, &p.APIType, &p.BaseURL, &p.APIVersion, &models, &p.APIKeySealed,
			timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}); err != nil {
			return nil, err
		}
		if len(p.APIKeySealed) == 0 {
			p.APIKeySealed = nil
		}
		return &p, json.Unmarshal([]byte(models), &p.Models)
	})
	if err != nil {
		return nil, fmt.Errorf("list model providers: %w", err)
	}
	return list, nil
}
