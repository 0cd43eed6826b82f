package engine

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Preference is a small setting a chat user chose, such as the assistant
// a Discord user picked for a channel (Key "assistant:<channel id>").
type Preference struct {
	Platform  Platform  `json:"platform"`
	UserID    string    `json:"user_id"`
	Key       string    `json:"key"`
	Value     string    `json:"value"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks a preference before it is stored.
func (p *Preference) Validate() error {
	p.Key, p.Value = strings.TrimSpace(p.Key), strings.TrimSpace(p.Value)
	switch {
	case p.Platform == "" || p.UserID == "" || p.Key == "":
		return Errorf(EINVALID, "A preference needs a platform, a user id and a key.")
	case len(p.Key) > 200 || len(p.Value) > 1000 || !utf8.ValidString(p.Key) || !utf8.ValidString(p.Value):
		return Errorf(EINVALID, "A preference's key is at most 200 bytes and its value at most 1000, in UTF-8.")
	}
	return nil
}
