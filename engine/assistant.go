package engine

import (
	"sort"
	"strings"
	"time"
	"unicode"
)

// Trigger says which messages in a channel the assistant answers.
type Trigger string

// Triggers. Direct messages are always answered.
const (
	TriggerMention  Trigger = "mention" // only messages that mention the bot
	TriggerThread   Trigger = "thread"  // mentions and follow-ups in threads the bot is in
	TriggerAll      Trigger = "all"     // every message
	DefaultTrigger          = TriggerThread
	ChannelAnyDM            = "@dm" // binding channel id matching every direct message
	ChannelAnywhere         = "*"   // binding channel id matching every channel of the platform
)

// Binding routes a platform channel (or every DM, or every channel) to an assistant.
type Binding struct {
	Platform  Platform `json:"platform"`
	ChannelID string   `json:"channel_id"`
	Trigger   Trigger  `json:"trigger,omitempty"`
}

// Assistant is a configured persona: prompt, model, knowledge, tools and
// the channels it answers in.
type Assistant struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	Description     string   `json:"description,omitempty"`
	SystemPrompt    string   `json:"system_prompt"`
	Model           string   `json:"model,omitempty"` // empty: the provider's default model
	Temperature     float64  `json:"temperature"`
	MaxOutputTokens int      `json:"max_output_tokens,omitempty"`
	KnowledgeBases  []string `json:"knowledge_bases"` // knowledge base names
	Tools           []string `json:"tools"`           // tool names: the allowlist
	// ToolPolicy sets allow, ask or deny per tool of the allowlist; a tool
	// without an entry is allowed.
	ToolPolicy map[string]ToolMode `json:"tool_policy,omitempty"`
	Bindings   []Binding           `json:"bindings"`
	Retrieval  RetrievalSettings   `json:"retrieval"`
	IsDefault  bool                `json:"is_default"`
	CreatedAt  time.Time           `json:"created_at"`
	UpdatedAt  time.Time           `json:"updated_at"`
}

// validAssistantName reports whether name is 1 to 64 letters, digits,
// spaces, dots, dashes or underscores, starting with a letter or digit.
// (As a regular expression, ^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,63}$ compiles
// to 1.4 MB that every process would keep.)
func validAssistantName(name string) bool {
	n := 0
	for _, r := range name {
		n++
		switch {
		case n > 64:
			return false
		case unicode.IsLetter(r) || unicode.IsNumber(r):
		case n > 1 && (r == ' ' || r == '.' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return n > 0
}

// Validate checks an assistant before it is stored.
func (a *Assistant) Validate() error {
	a.Name = strings.TrimSpace(a.Name)
	switch {
	case !validAssistantName(a.Name):
		return Errorf(EINVALID, "Assistant name %q is invalid: use 1 to 64 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit.", a.Name)
	case a.Temperature < 0 || a.Temperature > 2:
		return Errorf(EINVALID, "Temperature %.2f is out of range: use a value from 0 to 2.", a.Temperature)
	case a.MaxOutputTokens < 0:
		return Errorf(EINVALID, "Max output tokens must not be negative.")
	}
	if err := a.Retrieval.Validate(); err != nil {
		return err
	}
	for _, b := range a.Bindings {
		if b.Platform == "" || b.ChannelID == "" {
			return Errorf(EINVALID, "A channel binding needs a platform and a channel id (or %q for direct messages).", ChannelAnyDM)
		}
		switch b.Trigger {
		case "", TriggerMention, TriggerThread, TriggerAll:
		default:
			return Errorf(EINVALID, "Trigger %q is unknown: use mention, thread or all.", b.Trigger)
		}
	}
	for tool, m := range a.ToolPolicy {
		if !m.Valid() {
			return Errorf(EINVALID, "Tool policy %q for %s is unknown: use allow, ask or deny.", m, tool)
		}
		if strings.TrimSpace(tool) == "" {
			return Errorf(EINVALID, "A tool policy needs a tool name.")
		}
	}
	if a.KnowledgeBases == nil {
		a.KnowledgeBases = []string{}
	}
	if a.Tools == nil {
		a.Tools = []string{}
	}
	if a.Bindings == nil {
		a.Bindings = []Binding{}
	}
	return nil
}

// TriggerFor returns the trigger policy of a channel: the trigger of the
// binding that ResolveAssistant would route the channel by (exact channel,
// else every DM or every channel), DefaultTrigger when the binding has none
// or no binding matches. Direct messages are always answered, whatever it
// says.
func TriggerFor(all []*Assistant, ch Channel) Trigger {
	sorted := append([]*Assistant(nil), all...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	find := func(channelID string) (Trigger, bool) {
		for _, a := range sorted {
			for _, b := range a.Bindings {
				if b.Platform == ch.Platform && b.ChannelID == channelID {
					if b.Trigger == "" {
						return DefaultTrigger, true
					}
					return b.Trigger, true
				}
			}
		}
		return "", false
	}
	if t, ok := find(ch.ID); ok {
		return t
	}
	wildcard := ChannelAnywhere
	if ch.DM {
		wildcard = ChannelAnyDM
	}
	if t, ok := find(wildcard); ok {
		return t
	}
	return DefaultTrigger
}

// ResolveAssistant picks the assistant for a message: the one named
// explicitly, else the one bound to the exact channel, else the one bound to
// every DM (for a DM) or to every channel of the platform, else the default
// assistant. Ties go to the alphabetically first name, so the choice is stable.
func ResolveAssistant(all []*Assistant, ch Channel, explicit string) (*Assistant, error) {
	sorted := append([]*Assistant(nil), all...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	if explicit != "" {
		for _, a := range sorted {
			if strings.EqualFold(a.Name, explicit) {
				return a, nil
			}
		}
		return nil, Errorf(ENOTFOUND, "There is no assistant named %q: pick one of the assistants listed in the console.", explicit)
	}
	match := func(channelID string) *Assistant {
		for _, a := range sorted {
			for _, b := range a.Bindings {
				if b.Platform == ch.Platform && b.ChannelID == channelID {
					return a
				}
			}
		}
		return nil
	}
	if a := match(ch.ID); a != nil {
		return a, nil
	}
	if ch.DM {
		if a := match(ChannelAnyDM); a != nil {
			return a, nil
		}
	} else if a := match(ChannelAnywhere); a != nil {
		return a, nil
	}
	for _, a := range sorted {
		if a.IsDefault {
			return a, nil
		}
	}
	return nil, Errorf(ENOTFOUND, "No assistant is bound to this channel and there is no default assistant: an admin can set one in the console.")
}

// TriggerFor returns the trigger policy of assistant a in channel ch.
func (a *Assistant) TriggerFor(ch Channel) Trigger {
	for _, b := range a.Bindings {
		if b.Platform == ch.Platform && (b.ChannelID == ch.ID || b.ChannelID == ChannelAnywhere) && b.Trigger != "" {
			return b.Trigger
		}
	}
	return DefaultTrigger
}
