package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// EncryptionKeySize is the size of a SecretBox key: AES-256.
const EncryptionKeySize = 32

// sealVersion1 prefixes a sealed secret: AES-256-GCM, a random 12-byte
// nonce, then the ciphertext and its 16-byte tag. The byte lets the format
// change later while old secrets still open.
const sealVersion1 byte = 1

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// SecretBox seals secrets kept at rest (model providers' API keys) with
// AES-256-GCM under the key of security.encryption_key. It is safe for
// concurrent use.
//
// A nil *SecretBox has no key (PostgreSQL without security.encryption_key):
// Seal and Open fail with an EUNAVAILABLE error that tells the admin to set
// security.encryption_key.
type SecretBox struct {
	aead cipher.AEAD
}

// NewSecretBox returns a SecretBox for a 32-byte key (see
// ParseEncryptionKey).
func NewSecretBox(key []byte) (*SecretBox, error) {
	if len(key) != EncryptionKeySize {
		return nil, Errorf(EINVALID, "The encryption key has %d bytes, not %d: make one with `openssl rand -base64 32`.", len(key), EncryptionKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, WrapError(EINTERNAL, err, "create AES cipher")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, WrapError(EINTERNAL, err, "create AES-GCM")
	}
	return &SecretBox{aead: aead}, nil
}

// errNoKey is what a nil SecretBox answers.
func errNoKey() error {
	return Errorf(EUNAVAILABLE, "No encryption key is configured, so API keys cannot be stored or read: set security.encryption_key (make one with `openssl rand -base64 32`; every replica must use the same key) and restart.")
}

// Seal encrypts plaintext (which may be empty) with a random nonce; the
// result starts with a version byte.
func (b *SecretBox) Seal(plaintext string) ([]byte, error) {
	if b == nil {
		return nil, errNoKey()
	}
	out := make([]byte, 1+gcmNonceSize, 1+gcmNonceSize+len(plaintext)+gcmTagSize)
	out[0] = sealVersion1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, WrapError(EINTERNAL, err, "read random nonce")
	}
	// The version byte is authenticated too (additional data).
	return b.aead.Seal(out, out[1:1+gcmNonceSize], []byte(plaintext), []byte{sealVersion1}), nil
}

// Open decrypts a secret from Seal. A secret sealed under another key (or
// altered) is an EINVALID error that says to check security.encryption_key.
func (b *SecretBox) Open(sealed []byte) (string, error) {
	if b == nil {
		return "", errNoKey()
	}
	if len(sealed) == 0 {
		return "", Errorf(EINVALID, "There is no sealed secret to open.")
	}
	if sealed[0] != sealVersion1 {
		return "", Errorf(EINVALID, "The sealed secret has an unknown format (version %d): it was written by a newer ConvoSphere, or is damaged; enter the secret again.", sealed[0])
	}
	if len(sealed) < 1+gcmNonceSize+gcmTagSize {
		return "", Errorf(EINVALID, "The sealed secret is truncated: enter the secret again.")
	}
	plain, err := b.aead.Open(nil, sealed[1:1+gcmNonceSize], sealed[1+gcmNonceSize:], []byte{sealVersion1})
	if err != nil {
		return "", WrapError(EINVALID, err, "The secret cannot be decrypted: it was sealed with another key: check security.encryption_key (or, if the key was changed on purpose, enter the secret again).")
	}
	return string(plain), nil
}

// ParseEncryptionKey decodes security.encryption_key: 32 bytes written as
// base64 (standard or URL alphabet, padded or not) or as 64 hex
// characters. Its errors never contain the key.
func ParseEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	const howTo = "make one with `openssl rand -base64 32` (32 random bytes as base64) or `openssl rand -hex 32`"
	if s == "" {
		return nil, Errorf(EINVALID, "The encryption key is empty: %s.", howTo)
	}
	if len(s) == 2*EncryptionKeySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != EncryptionKeySize {
			return nil, Errorf(EINVALID, "The encryption key decodes to %d bytes, not %d: %s.", len(key), EncryptionKeySize, howTo)
		}
		return key, nil
	}
	return nil, Errorf(EINVALID, "The encryption key is neither base64 nor 64 hex characters: %s.", howTo)
}

// NewEncryptionKey returns a random 32-byte key as base64, in the form
// ParseEncryptionKey reads.
func NewEncryptionKey() string {
	key := make([]byte, EncryptionKeySize)
	_, _ = rand.Read(key)
	return base64.StdEncoding.EncodeToString(key)
}
