package engine_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

// MustSecretBox returns a SecretBox over a key of 32 copies of b.
func MustSecretBox(tb testing.TB, b byte) *engine.SecretBox {
	tb.Helper()
	box, err := engine.NewSecretBox(bytes.Repeat([]byte{b}, engine.EncryptionKeySize))
	if err != nil {
		tb.Fatal(err)
	}
	return box
}

func TestSecretBoxRoundTrip(t *testing.T) {
	box := MustSecretBox(t, 1)
	tests := []struct{ name, plain string }{
		{"empty", ""},
		{"api key", "sk-proj-0123456789abcdef"},
		{"unicode", "clé secrète ✓"},
		{"long", strings.Repeat("x", 10_000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := box.Seal(tt.plain)
			if err != nil {
				t.Fatal(err)
			}
			if sealed[0] != 1 || len(sealed) != 1+12+len(tt.plain)+16 {
				t.Fatalf("sealed form: version %d, %d bytes", sealed[0], len(sealed))
			}
			if tt.plain != "" && bytes.Contains(sealed, []byte(tt.plain)) {
				t.Fatal("the sealed secret contains the plain text")
			}
			got, err := box.Open(sealed)
			if err != nil || got != tt.plain {
				t.Fatalf("Open = %q, %v; want %q", got, err, tt.plain)
			}
			again, _ := box.Seal(tt.plain)
			if bytes.Equal(again, sealed) {
				t.Fatal("sealing twice gave the same bytes: the nonce is not random")
			}
		})
	}
}

func TestSecretBoxRejects(t *testing.T) {
	box := MustSecretBox(t, 1)
	sealed, err := box.Seal("sk-secret")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		box    *engine.SecretBox
		sealed []byte
		code   string
		says   string
	}{
		{"wrong key", MustSecretBox(t, 2), sealed, engine.EINVALID, "was sealed with another key: check security.encryption_key"},
		{"tampered ciphertext", box, flip(14), engine.EINVALID, "security.encryption_key"},
		{"tampered nonce", box, flip(3), engine.EINVALID, "security.encryption_key"},
		{"tampered tag", box, flip(len(sealed) - 1), engine.EINVALID, "security.encryption_key"},
		{"unknown version", box, append([]byte{9}, sealed[1:]...), engine.EINVALID, "unknown format (version 9)"},
		{"truncated", box, sealed[:20], engine.EINVALID, "truncated"},
		{"empty", box, nil, engine.EINVALID, "no sealed secret"},
		{"no key", nil, sealed, engine.EUNAVAILABLE, "set security.encryption_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.box.Open(tt.sealed)
			if engine.ErrorCode(err) != tt.code || !strings.Contains(engine.ErrorMessage(err), tt.says) {
				t.Fatalf("Open = %q, %v (%s); want %s saying %q", got, err, engine.ErrorCode(err), tt.code, tt.says)
			}
		})
	}
	var none *engine.SecretBox
	if _, err := none.Seal("x"); engine.ErrorCode(err) != engine.EUNAVAILABLE || !strings.Contains(err.Error(), "every replica must use the same key") {
		t.Fatalf("Seal without a key = %v", err)
	}
}

func TestParseEncryptionKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:32] // has + and / in std base64
	tests := []struct {
		name, in string
		ok       bool
		says     string
	}{
		{"std padded", base64.StdEncoding.EncodeToString(key), true, ""},
		{"std raw", base64.RawStdEncoding.EncodeToString(key), true, ""},
		{"url padded", base64.URLEncoding.EncodeToString(key), true, ""},
		{"url raw", base64.RawURLEncoding.EncodeToString(key), true, ""},
		{"hex", hex.EncodeToString(key), true, ""},
		{"hex upper with spaces", "  " + strings.ToUpper(hex.EncodeToString(key)) + "\n", true, ""},
		{"empty", "", false, "openssl rand -base64 32"},
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16]), false, "decodes to 16 bytes"},
		{"short hex", hex.EncodeToString(key[:16]), false, "openssl rand -base64 32"},
		{"not base64", "this is not a key!", false, "neither base64 nor 64 hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := engine.ParseEncryptionKey(tt.in)
			if tt.ok {
				if err != nil || !bytes.Equal(got, key) {
					t.Fatalf("ParseEncryptionKey = %x, %v; want %x", got, err, key)
				}
				return
			}
			if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error = %v, want EINVALID saying %q", err, tt.says)
			}
			if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Fatalf("the error repeats the key: %v", err)
			}
		})
	}
}

func TestNewEncryptionKey(t *testing.T) {
	a, b := engine.NewEncryptionKey(), engine.NewEncryptionKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	key, err := engine.ParseEncryptionKey(a)
	if err != nil || len(key) != 32 {
		t.Fatalf("ParseEncryptionKey(NewEncryptionKey()) = %d bytes, %v", len(key), err)
	}
	if _, err := engine.NewSecretBox(key[:16]); engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("NewSecretBox with 16 bytes: %v", err)
	}
}
