package app

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
)

// EncryptionKeyFile is the key generated in data_dir when
// security.encryption_key is empty and the store is the embedded one.
const EncryptionKeyFile = "encryption.key"

// EncryptionKey returns the key that seals secrets at rest:
// security.encryption_key when set; else, with the embedded store, the
// key in <data_dir>/encryption.key, generated there (mode 0600) the first
// time; else (PostgreSQL, whose replicas must share one key) nil: no key.
func EncryptionKey(cfg config.Config, logger *slog.Logger) ([]byte, error) {
	if cfg.Security.EncryptionKey != "" {
		key, err := engine.ParseEncryptionKey(cfg.Security.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("security.encryption_key: %w", err)
		}
		return key, nil
	}
	if cfg.Database.URL != "" {
		logger.Info("security.encryption_key is not set: model providers with an API key cannot be saved or used; set it (the same on every replica) to store API keys")
		return nil, nil
	}
	path := filepath.Join(cfg.DataDir, EncryptionKeyFile)
	key, err := readKeyFile(path, logger)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
	}
	created, err := createKeyFile(path)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Info("generated the encryption key for API keys at rest; back it up with the database, or set security.encryption_key", "path", path)
	}
	return readKeyFile(path, logger)
}

// readKeyFile reads and parses a key file.
func readKeyFile(path string, logger *slog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read the encryption key %s: %w (check its permissions, or set security.encryption_key)", path, err)
	}
	key, err := engine.ParseEncryptionKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("the encryption key in %s is not valid: %s (restore it from a backup, or set security.encryption_key; a new key makes stored API keys unreadable until they are entered again)",
			path, strings.TrimSuffix(engine.ErrorMessage(err), "."))
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the encryption key file is readable by other users; make it private", "path", path, "mode", fi.Mode().Perm().String())
	}
	return key, nil
}

// createKeyFile writes a new key to path unless a file is already there,
// atomically: the key is written to a temporary file first and linked into
// place, so a process starting at the same time reads either no file or
// the whole key. It reports whether it created the file.
func createKeyFile(path string) (bool, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".encryption.key-*")
	if err != nil {
		return false, fmt.Errorf("generate the encryption key in %s: %w", filepath.Dir(path), err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("generate the encryption key: %w", err)
	}
	if _, err := tmp.WriteString(engine.NewEncryptionKey() + "\n"); err != nil {
		tmp.Close()
		return false, fmt.Errorf("generate the encryption key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("generate the encryption key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("generate the encryption key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil // another process was first
		}
		return false, fmt.Errorf("generate the encryption key %s: %w", path, err)
	}
	return true, nil
}

// OpenSecrets returns the SecretBox of EncryptionKey, or nil when there
// is no key (PostgreSQL without security.encryption_key): a nil SecretBox
// refuses to seal and open, saying to set security.encryption_key.
func OpenSecrets(cfg config.Config, logger *slog.Logger) (*engine.SecretBox, error) {
	key, err := EncryptionKey(cfg, logger)
	if err != nil || key == nil {
		return nil, err
	}
	return engine.NewSecretBox(key)
}
