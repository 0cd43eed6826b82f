-- Language-model providers configured in the console. models is a JSON
-- array of model names; api_key_sealed is the API key sealed with
-- security.encryption_key (engine.SecretBox), empty when there is none.
CREATE TABLE model_providers (
	name           TEXT PRIMARY KEY,
	api_type       TEXT NOT NULL,
	base_url       TEXT NOT NULL,
	api_version    TEXT NOT NULL,
	models         TEXT NOT NULL,
	api_key_sealed BLOB NOT NULL,
	created_at     TEXT NOT NULL,
	updated_at     TEXT NOT NULL
) STRICT;
