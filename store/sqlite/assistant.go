package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/convosphere/convosphere/engine"
)

// assistantJSON holds the JSON columns of an assistant.
type assistantJSON struct {
	knowledgeBases, tools, toolPolicy, bindings, retrieval []byte
}

// encodeAssistant encodes a's JSON columns. An empty tool policy is stored
// as {} and read back nil, so it becomes nil in a too.
func encodeAssistant(a *engine.Assistant) (assistantJSON, error) {
	var (
		j   assistantJSON
		err error
	)
	if len(a.ToolPolicy) == 0 {
		a.ToolPolicy = nil
		j.toolPolicy = []byte(`{}`)
	} else if j.toolPolicy, err = json.Marshal(a.ToolPolicy); err != nil {
		return j, fmt.Errorf("encode tool policy: %w", err)
	}
	if j.knowledgeBases, err = json.Marshal(a.KnowledgeBases); err != nil {
		return j, fmt.Errorf("encode knowledge bases: %w", err)
	}
	if j.tools, err = json.Marshal(a.Tools); err != nil {
		return j, fmt.Errorf("encode tools: %w", err)
	}
	if j.bindings, err = json.Marshal(a.Bindings); err != nil {
		return j, fmt.Errorf("encode bindings: %w", err)
	}
	if j.retrieval, err = json.Marshal(a.Retrieval); err != nil {
		return j, fmt.Errorf("encode retrieval: %w", err)
	}
	return j, nil
}

// clearDefault makes a the only default assistant when it is one.
func clearDefault(ctx context.Context, tx *sql.Tx, a *engine.Assistant) error {
	if !a.IsDefault {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE assistants SET is_default = 0 WHERE is_default = 1 AND id <> ?`, a.ID); err != nil {
		return fmt.Errorf("clear default assistant: %w", err)
	}
	return nil
}

// CreateAssistant stores a; ECONFLICT when the name is taken (ignoring
// case). When a is the default, the others stop being it.
func (db *DB) CreateAssistant(ctx context.Context, a *engine.Assistant) error {
	if err := a.Normalize(now()); err != nil {
		return err
	}
	j, err := encodeAssistant(a)
	if err != nil {
		return err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		if err := clearDefault(ctx, tx, a); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO assistants (id, name, name_key, description, system_prompt,
			model, temperature, max_output_tokens, knowledge_bases, tools, tool_policy, bindings, retrieval, is_default,
			created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Name, nameKey(a.Name), a.Description, a.SystemPrompt, a.Model, a.Temperature, a.MaxOutputTokens,
			string(j.knowledgeBases), string(j.tools), string(j.toolPolicy), string(j.bindings), string(j.retrieval), a.IsDefault,
			encTime(a.CreatedAt), encTime(a.UpdatedAt))
		return err
	})
	switch {
	case violates(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, "assistants.name_key"):
		return a.NameTakenError(err)
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "Assistant %q already exists.", a.ID)
	case err != nil:
		return fmt.Errorf("create assistant: %w", err)
	}
	return nil
}

// UpdateAssistant stores every field of a but CreatedAt, which it fills in.
func (db *DB) UpdateAssistant(ctx context.Context, a *engine.Assistant) error {
	if err := a.Validate(); err != nil {
		return err
	}
	j, err := encodeAssistant(a)
	if err != nil {
		return err
	}
	at := now()
	var created time.Time
	err = db.write(ctx, func(tx *sql.Tx) error {
		if err := clearDefault(ctx, tx, a); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `UPDATE assistants SET name = ?, name_key = ?, description = ?,
			system_prompt = ?, model = ?, temperature = ?, max_output_tokens = ?, knowledge_bases = ?, tools = ?,
			tool_policy = ?, bindings = ?, retrieval = ?, is_default = ?, updated_at = ? WHERE id = ? RETURNING created_at`,
			a.Name, nameKey(a.Name), a.Description, a.SystemPrompt, a.Model, a.Temperature, a.MaxOutputTokens,
			string(j.knowledgeBases), string(j.tools), string(j.toolPolicy), string(j.bindings), string(j.retrieval), a.IsDefault,
			encTime(at), a.ID,
		).Scan(timeCol{&created})
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound("Assistant", a.ID)
	case violates(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, "assistants.name_key"):
		return a.NameTakenError(err)
	case err != nil:
		return fmt.Errorf("update assistant: %w", err)
	}
	a.CreatedAt, a.UpdatedAt = created, at
	return nil
}

// DeleteAssistant deletes the assistant with the id; ENOTFOUND when missing.
// Its conversations and traces are kept.
func (db *DB) DeleteAssistant(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM assistants WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete assistant: %w", err)
	}
	return affected(res, "Assistant", id)
}

const assistantColumns = `id, name, description, system_prompt, model, temperature, max_output_tokens,
	knowledge_bases, tools, tool_policy, bindings, retrieval, is_default, created_at, updated_at`

func scanAssistant(s scanner) (*engine.Assistant, error) {
	var (
		a engine.Assistant
		j assistantJSON
	)
	err := s.Scan(&a.ID, &a.Name, &a.Description, &a.SystemPrompt, &a.Model, &a.Temperature, &a.MaxOutputTokens,
		&j.knowledgeBases, &j.tools, &j.toolPolicy, &j.bindings, &j.retrieval, &a.IsDefault, timeCol{&a.CreatedAt}, timeCol{&a.UpdatedAt})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(
		json.Unmarshal(j.knowledgeBases, &a.KnowledgeBases),
		json.Unmarshal(j.tools, &a.Tools),
		json.Unmarshal(j.toolPolicy, &a.ToolPolicy),
		json.Unmarshal(j.bindings, &a.Bindings),
		json.Unmarshal(j.retrieval, &a.Retrieval),
	); err != nil {
		return nil, fmt.Errorf("decode assistant %s: %w", a.ID, err)
	}
	if len(a.ToolPolicy) == 0 {
		a.ToolPolicy = nil
	}
	return &a, nil
}

func (db *DB) assistant(ctx context.Context, where, arg, what string) (*engine.Assistant, error) {
	a, err := scanAssistant(db.r.QueryRowContext(ctx, `SELECT `+assistantColumns+` FROM assistants WHERE `+where, arg))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound("Assistant", what)
	case err != nil:
		return nil, fmt.Errorf("get assistant: %w", err)
	}
	return a, nil
}

// AssistantByID returns the assistant with the id.
func (db *DB) AssistantByID(ctx context.Context, id string) (*engine.Assistant, error) {
	return db.assistant(ctx, `id = ?`, id, id)
}

// AssistantByName returns the assistant with the name, ignoring case.
func (db *DB) AssistantByName(ctx context.Context, name string) (*engine.Assistant, error) {
	return db.assistant(ctx, `name_key = ?`, nameKey(strings.TrimSpace(name)), name)
}

// ListAssistants returns every assistant ordered by name.
func (db *DB) ListAssistants(ctx context.Context) ([]*engine.Assistant, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+assistantColumns+` FROM assistants ORDER BY name_key, id`)
	if err != nil {
		return nil, fmt.Errorf("list assistants: %w", err)
	}
	list, err := collect(rows, scanAssistant)
	if err != nil {
		return nil, fmt.Errorf("list assistants: %w", err)
	}
	return list, nil
}
