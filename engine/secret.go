package engine

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// NewSecret returns a random token with the given prefix (for example
// "cs_" for API tokens) and the hash to store in its place.
func NewSecret(prefix string) (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashSecret(token)
}

// HashSecret returns the hex SHA-256 of a high-entropy token. Tokens are
// random, so a fast hash is enough; passwords use HashPassword.
func HashSecret(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// passwordIterations follows OWASP's PBKDF2-HMAC-SHA256 recommendation.
const passwordIterations = 600_000

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// HashPassword returns a PBKDF2-HMAC-SHA256 hash of password in the form
// pbkdf2-sha256$iterations$salt$key (base64).
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", Errorf(EINVALID, "The password is too short: use at least %d characters.", MinPasswordLength)
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, password, salt, passwordIterations, 32)
	if err != nil {
		return "", WrapError(EINTERNAL, err, "hash password")
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", passwordIterations, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches a hash from HashPassword,
// in constant time.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}
