package password

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

var cheap = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32}

func TestHashAndVerify(t *testing.T) {
	hash, err := Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("hash %q is not argon2id with the default parameters", hash)
	}
	other, _ := Hash("correct horse battery")
	if other == hash {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		hash, pw string
		want     bool
	}{
		{hash, "correct horse battery", true},
		{hash, "correct horse batterY", false},
		{hash, "", false},
		{"garbage", "correct horse battery", false},
		{"", "", false},
		{strings.Replace(hash, "argon2id", "argon2i", 1), "correct horse battery", false},
		{strings.Replace(hash, "m=65536", "m=99999999", 1), "correct horse battery", false}, // tampered cost
		{strings.Replace(hash, "t=3", "t=x", 1), "correct horse battery", false},
		{hash[:len(hash)-4], "correct horse battery", false},
	}
	for i, tt := range tests {
		if got := Verify(tt.hash, tt.pw); got != tt.want {
			t.Errorf("%d: Verify(%.40q, %q) = %v, want %v", i, tt.hash, tt.pw, got, tt.want)
		}
	}
}

// legacyHash is a hash as earlier versions stored it (PBKDF2-SHA256).
func legacyHash(t *testing.T, pw string, iter int) string {
	t.Helper()
	salt := []byte("0123456789abcdef")
	key, err := pbkdf2.Key(sha256.New, pw, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", iter, enc.EncodeToString(salt), enc.EncodeToString(key))
}

func TestLegacyHashesVerifyAndNeedRehash(t *testing.T) {
	old := legacyHash(t, "an old password", 1000)
	if !Verify(old, "an old password") || Verify(old, "another password") {
		t.Error("a legacy PBKDF2 hash is not checked correctly")
	}
	weak, err := HashWith("a weak hash here", cheap)
	if err != nil {
		t.Fatal(err)
	}
	strong, _ := Hash("a strong hash here")
	for _, tt := range []struct {
		hash string
		want bool
	}{{old, true}, {weak, true}, {strong, false}, {"garbage", true}} {
		if got := NeedsRehash(tt.hash); got != tt.want {
			t.Errorf("NeedsRehash(%.30q) = %v, want %v", tt.hash, got, tt.want)
		}
	}
	if !Verify(weak, "a weak hash here") {
		t.Error("a hash with other parameters does not verify")
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		pw string
		ok bool
	}{{"short", false}, {"ten chars!", true}, {"ééééééééé", false}, {"éééééééééé", true}, {strings.Repeat("x", MaxLength+1), false}} {
		err := Check(tt.pw)
		if (err == nil) != tt.ok || (err != nil && engine.ErrorCode(err) != engine.EINVALID) {
			t.Errorf("Check(%.20q) = %v, want ok=%v", tt.pw, err, tt.ok)
		}
		if _, herr := HashWith(tt.pw, cheap); (herr == nil) != tt.ok {
			t.Errorf("HashWith(%.20q) = %v, want ok=%v", tt.pw, herr, tt.ok)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("correct horse battery"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckNew(t *testing.T) {
	tests := []struct {
		pw, user, want string // want: part of the error, "" for none
	}{
		{"a good long passphrase", "ada", ""},
		{"short", "ada", "too short"},
		{"aaaaaaaaaaaa", "ada", "5 different"},
		{"password123", "ada", "most common"},
		{"my name is ada lovelace", "ada", "user name"},
		{"tab\there is bad", "ada", "control characters"},
		{"\xff\xfe invalid bytes", "ada", "UTF-8"},
	}
	for _, tt := range tests {
		err := CheckNew(tt.pw, tt.user)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(engine.ErrorMessage(err), tt.want)) {
			t.Errorf("CheckNew(%q) = %v, want %q", tt.pw, err, tt.want)
		}
	}
}
