-- Language-model providers configured in the console. models is a JSON
-- array of model names; api_key_sealed is the API key sealed with
-- security.encryption_key (engine.SecretBox), empty when there is none.
CREATE TABLE model_providers (
	name           text COLLATE "C" PRIMARY KEY,
	api_type       text NOT NULL,
	base_url       text NOT NULL,
	api_version    text NOT NULL,
	models         text NOT NULL,
	api_key_sealed bytea NOT NULL,
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL
);
