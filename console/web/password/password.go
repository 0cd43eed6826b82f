// Package password hashes console passwords with argon2id (RFC 9106) in
// the PHC string format, and still checks the PBKDF2-SHA256 hashes that
// earlier versions stored, so that they can be upgraded at the next
// sign-in (NeedsRehash).
package password

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/convosphere/convosphere/engine"
)

// MinLength is the shortest password accepted; MaxLength the longest
// (argon2 hashes any length, but a megabyte "password" is a denial of
// service, not a password).
const (
	MinLength = 10
	MaxLength = 1024
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	KeyLen  uint32
}

// Default is RFC 9106's second recommended option scaled to a console:
// 64 MiB, 3 passes, 2 lanes (about 0.1 s on one core of a 2-core machine),
// above OWASP's minimum of 19 MiB and 2 passes.
var Default = Params{Memory: 64 << 10, Time: 3, Threads: 2, KeyLen: 32}

// Check reports whether pw is acceptable; the error says why not.
func Check(pw string) error {
	switch n := len([]rune(pw)); {
	case n < MinLength:
		return engine.Errorf(engine.EINVALID, "The password is too short: use at least %d characters.", MinLength)
	case len(pw) > MaxLength:
		return engine.Errorf(engine.EINVALID, "The password is too long: use at most %d bytes.", MaxLength)
	}
	return nil
}

// Hash returns the argon2id hash of pw with Default parameters and a
// random salt: $argon2id$v=19$m=65536,t=3,p=2$<salt>$<key> (base64, no padding).
func Hash(pw string) (string, error) {
	return HashWith(pw, Default)
}

// HashWith is Hash with other parameters (tests use cheap ones).
func HashWith(pw string, p Params) (string, error) {
	if err := Check(pw); err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", engine.WrapError(engine.EINTERNAL, err, "hash password")
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify reports whether pw matches hash (argon2id, or the legacy
// pbkdf2-sha256$iterations$salt$key), in constant time. A malformed hash
// matches nothing.
func Verify(hash, pw string) bool {
	if len(pw) > MaxLength {
		return false
	}
	if strings.HasPrefix(hash, "pbkdf2-sha256$") {
		return verifyPBKDF2(hash, pw)
	}
	p, salt, want, ok := parseArgon2id(hash)
	if !ok {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// NeedsRehash reports whether hash should be replaced by Hash's at the
// next successful sign-in: a legacy scheme or weaker parameters.
func NeedsRehash(hash string) bool {
	p, _, _, ok := parseArgon2id(hash)
	return !ok || p.Memory < Default.Memory || p.Time < Default.Time || p.Threads < Default.Threads
}

// parseArgon2id reads a PHC argon2id string.
func parseArgon2id(hash string) (Params, []byte, []byte, bool) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, false
	}
	var p Params
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return Params{}, nil, nil, false
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return Params{}, nil, nil, false
			}
			p.Threads = uint8(n)
		default:
			return Params{}, nil, nil, false
		}
	}
	// Bounds keep a tampered hash from costing more than a sign-in should.
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 1<<20 || p.Time > 16 {
		return Params{}, nil, nil, false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	key, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return Params{}, nil, nil, false
	}
	return p, salt, key, true
}

func verifyPBKDF2(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, pw, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}
