package app_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/convosphere/convosphere/cmd/internal/app"
	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newLogger() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func testConfig(tb testing.TB) config.Config {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(tb.TempDir(), "data") // not created yet
	return cfg
}

func TestEncryptionKeyGeneratedForTheEmbeddedStore(t *testing.T) {
	cfg := testConfig(t)
	logger, logs := newLogger()
	key, err := app.EncryptionKey(cfg, logger)
	if err != nil || len(key) != 32 {
		t.Fatalf("EncryptionKey = %d bytes, %v", len(key), err)
	}
	path := filepath.Join(cfg.DataDir, app.EncryptionKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	encoded := base64.StdEncoding.EncodeToString(key)
	if !strings.Contains(logs.String(), "generated the encryption key") || !strings.Contains(logs.String(), path) {
		t.Errorf("the generation was not logged with its path:\n%s", logs)
	}
	if strings.Contains(logs.String(), encoded) || strings.Contains(logs.String(), encoded[:16]) {
		t.Errorf("the log contains the key:\n%s", logs)
	}

	// Later starts read the same key and generate nothing.
	logger2, logs2 := newLogger()
	again, err := app.EncryptionKey(cfg, logger2)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second EncryptionKey = %x, %v; want %x", again, err, key)
	}
	if strings.Contains(logs2.String(), "generated") {
		t.Errorf("the key was generated again:\n%s", logs2)
	}
	entries, _ := os.ReadDir(cfg.DataDir)
	if len(entries) != 1 {
		t.Errorf("data_dir holds %d files, want only %s (no temporary files left)", len(entries), app.EncryptionKeyFile)
	}
}

func TestEncryptionKeyConcurrentStartsAgree(t *testing.T) {
	cfg := testConfig(t)
	logger, logs := newLogger()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := app.EncryptionKey(cfg, logger)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) || len(k) != 32 {
			t.Fatalf("processes starting together got different keys")
		}
	}
	if n := strings.Count(logs.String(), "generated the encryption key"); n != 1 {
		t.Errorf("the key was generated %d times, want once", n)
	}
}

func TestEncryptionKeySources(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	tests := []struct {
		name    string
		edit    func(*config.Config)
		file    string // content of data_dir/encryption.key, when not empty
		want    []byte // nil: no key
		errSays []string
		noFile  bool // no key file may be created
	}{
		{"configured", func(c *config.Config) { c.Security.EncryptionKey = base64.StdEncoding.EncodeToString(raw) }, "", raw, nil, true},
		{"configured wins over the file", func(c *config.Config) { c.Security.EncryptionKey = strings.Repeat("ab", 32) },
			base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), raw, nil, false},
		{"configured invalid", func(c *config.Config) { c.Security.EncryptionKey = "short" }, "", nil,
			[]string{"security.encryption_key", "openssl rand -base64 32"}, true},
		{"PostgreSQL without a key", func(c *config.Config) { c.Database.URL = "postgres://u@127.0.0.1:1/db" }, "", nil, nil, true},
		{"PostgreSQL with a key", func(c *config.Config) {
			c.Database.URL, c.Security.EncryptionKey = "postgres://u@127.0.0.1:1/db", base64.RawURLEncoding.EncodeToString(raw)
		}, "", raw, nil, true},
		{"existing file", nil, base64.StdEncoding.EncodeToString(raw) + "\n", raw, nil, false},
		{"damaged file", nil, "garbage", nil, []string{app.EncryptionKeyFile, "is not valid", "restore it from a backup", "security.encryption_key"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			path := filepath.Join(cfg.DataDir, app.EncryptionKeyFile)
			if tt.file != "" {
				if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			logger, _ := newLogger()
			key, err := app.EncryptionKey(cfg, logger)
			if len(tt.errSays) > 0 {
				for _, s := range tt.errSays {
					if err == nil || !strings.Contains(err.Error(), s) {
						t.Fatalf("error %v does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "garbage") {
					t.Errorf("the error repeats the file's content: %v", err)
				}
			} else if err != nil || !bytes.Equal(key, tt.want) {
				t.Fatalf("EncryptionKey = %x, %v; want %x", key, err, tt.want)
			}
			if _, err := os.Stat(path); tt.noFile && err == nil {
				t.Errorf("%s was created", path)
			}
		})
	}
}

func TestOpenSecrets(t *testing.T) {
	// The embedded store: a box that seals and opens.
	logger, _ := newLogger()
	box, err := app.OpenSecrets(testConfig(t), logger)
	if err != nil || box == nil {
		t.Fatalf("OpenSecrets = %v, %v", box, err)
	}
	sealed, err := box.Seal("sk-1")
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := box.Open(sealed); err != nil || plain != "sk-1" {
		t.Fatalf("Open = %q, %v", plain, err)
	}

	// PostgreSQL without a key: no box; sealing says what to set.
	cfg := testConfig(t)
	cfg.Database.URL = "postgres://u@127.0.0.1:1/db"
	box, err = app.OpenSecrets(cfg, logger)
	if err != nil || box != nil {
		t.Fatalf("OpenSecrets = %v, %v; want no box", box, err)
	}
	_, err = box.Seal("sk-1")
	if engine.ErrorCode(err) != engine.EUNAVAILABLE || !strings.Contains(err.Error(), "set security.encryption_key") || !strings.Contains(err.Error(), "every replica") {
		t.Fatalf("Seal without a key = %v", err)
	}
}

func TestLooseKeyFileIsReported(t *testing.T) {
	cfg := testConfig(t)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, app.EncryptionKeyFile)
	if err := os.WriteFile(path, []byte(engine.NewEncryptionKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	logger, logs := newLogger()
	if _, err := app.EncryptionKey(cfg, logger); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "readable by other users") {
		t.Errorf("a world-readable key file was not reported:\n%s", logs)
	}
}
