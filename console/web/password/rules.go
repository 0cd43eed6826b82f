package password

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
)

// commonPasswords are refused whatever their length: they are the first
// ones any attacker tries.
var commonPasswords = map[string]bool{
	"password12": true, "password123": true, "password1234": true, "passw0rd123": true, "1234567890": true,
	"12345678910": true, "123456789012": true, "0987654321": true, "qwertyuiop": true, "qwerty1234": true,
	"qwerty12345": true, "1q2w3e4r5t": true, "1qaz2wsx3edc": true, "iloveyou123": true, "letmein123": true,
	"welcome123": true, "changeme123": true, "administrator": true, "abcdefghij": true, "abcd123456": true,
	"convosphere": true, "convosphere1": true, "convosphere123": true, "trustno1234": true, "superman123": true,
}

// CheckNew says what is wrong with a password someone chooses (Check
// plus: no control characters, at least 5 different characters, not one
// of the most common passwords, not containing the user name), in words
// they can act on.
func CheckNew(pw, userName string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return engine.Errorf(engine.EINVALID, "The pw is not valid UTF-8 text: type it again.")
	case n < MinLength:
		return engine.Errorf(engine.EINVALID, "The pw is too short (%d characters): use at least %d. A few unrelated words make a good one.", n, MinLength)
	case len(pw) > MaxLength:
		return engine.Errorf(engine.EINVALID, "The pw is too long: use at most %d bytes.", MaxLength)
	case hasControl(pw):
		return engine.Errorf(engine.EINVALID, "The pw must not contain control characters such as tabs or line breaks.")
	case distinctRunes(pw) < 5:
		return engine.Errorf(engine.EINVALID, "The pw repeats too few characters: use at least 5 different ones.")
	case commonPasswords[strings.ToLower(pw)]:
		return engine.Errorf(engine.EINVALID, "This pw is one of the most common ones, which attackers try first: choose another.")
	case utf8.RuneCountInString(userName) >= 3 && strings.Contains(strings.ToLower(pw), strings.ToLower(userName)):
		return engine.Errorf(engine.EINVALID, "The pw must not contain your user name (%s): choose another.", userName)
	}
	return nil
}

func distinctRunes(s string) int {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[r] = true
	}
	return len(seen)
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}
