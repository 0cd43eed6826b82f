package engine

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestValidateText(t *testing.T) {
	tests := []struct {
		name string
		text string
		max  int
		code string
	}{
		{"ok", "How do I connect Slack?", 0, ""},
		{"empty", "", 0, EINVALID},
		{"blank", " \n\t ", 0, EINVALID},
		{"too large", strings.Repeat("a", 101), 100, ETOOLARGE},
		{"exactly the limit", strings.Repeat("a", 100), 100, ""},
		{"invalid utf-8", "caf\xe9", 0, EINVALID},
		{"nul byte", "hello\x00world", 0, EINVALID},
		{"default limit", strings.Repeat("é", DefaultMaxMessageBytes/2+1), 0, ETOOLARGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateText(tt.text, tt.max)
			if got := ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q, want %q (err %v)", got, tt.code, err)
			}
			if err != nil && !strings.Contains(ErrorMessage(err), ":") {
				t.Errorf("message %q does not say how to fix it", ErrorMessage(err))
			}
		})
	}
}

func TestResolveAssistant(t *testing.T) {
	general := &Assistant{ID: "1", Name: "General", IsDefault: true}
	support := &Assistant{ID: "2", Name: "Support", Bindings: []Binding{{Platform: PlatformSlack, ChannelID: "C1"}}}
	dms := &Assistant{ID: "3", Name: "Helper", Bindings: []Binding{{Platform: PlatformSlack, ChannelID: ChannelAnyDM}}}
	discord := &Assistant{ID: "4", Name: "Gamer", Bindings: []Binding{{Platform: PlatformDiscord, ChannelID: ChannelAnywhere, Trigger: TriggerAll}}}
	all := []*Assistant{general, support, dms, discord}
	tests := []struct {
		name     string
		list     []*Assistant
		ch       Channel
		explicit string
		want     string
		code     string
	}{
		{"exact channel binding", all, Channel{Platform: PlatformSlack, ID: "C1"}, "", "Support", ""},
		{"dm binding", all, Channel{Platform: PlatformSlack, ID: "D9", DM: true}, "", "Helper", ""},
		{"platform wildcard", all, Channel{Platform: PlatformDiscord, ID: "123"}, "", "Gamer", ""},
		{"wildcard does not match dms", all, Channel{Platform: PlatformDiscord, ID: "9", DM: true}, "", "General", ""},
		{"default otherwise", all, Channel{Platform: PlatformSlack, ID: "C2"}, "", "General", ""},
		{"explicit wins, case-insensitive", all, Channel{Platform: PlatformSlack, ID: "C1"}, "general", "General", ""},
		{"explicit unknown", all, Channel{Platform: PlatformSlack, ID: "C1"}, "nobody", "", ENOTFOUND},
		{"no default", []*Assistant{support}, Channel{Platform: PlatformSlack, ID: "C2"}, "", "", ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ResolveAssistant(tt.list, tt.ch, tt.explicit)
			if got := ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q, want %q (%v)", got, tt.code, err)
			}
			if err == nil && a.Name != tt.want {
				t.Fatalf("assistant = %s, want %s", a.Name, tt.want)
			}
		})
	}
	if got := discord.TriggerFor(Channel{Platform: PlatformDiscord, ID: "5"}); got != TriggerAll {
		t.Errorf("TriggerFor wildcard = %s, want all", got)
	}
	if got := support.TriggerFor(Channel{Platform: PlatformSlack, ID: "C1"}); got != DefaultTrigger {
		t.Errorf("TriggerFor without trigger = %s, want %s", got, DefaultTrigger)
	}
}

func TestAssistantValidate(t *testing.T) {
	tests := []struct {
		name string
		a    Assistant
		ok   bool
	}{
		{"ok", Assistant{Name: "Support bot", Temperature: 0.7}, true},
		{"empty name", Assistant{Name: " "}, false},
		{"name with slash", Assistant{Name: "a/b"}, false},
		{"temperature", Assistant{Name: "x", Temperature: 2.5}, false},
		{"binding without channel", Assistant{Name: "x", Bindings: []Binding{{Platform: PlatformSlack}}}, false},
		{"unknown trigger", Assistant{Name: "x", Bindings: []Binding{{Platform: PlatformSlack, ChannelID: "C", Trigger: "sometimes"}}}, false},
	}
	for _, tt := range tests {
		err := tt.a.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && ErrorCode(err) != EINVALID {
			t.Errorf("%s: code %s, want invalid", tt.name, ErrorCode(err))
		}
	}
}

func TestValidAssistantName(t *testing.T) {
	// The rule as a regular expression: the reference (too big to keep
	// in every process, fine in a test).
	re := regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,63}$`)
	tests := []struct {
		name string
		want bool
	}{
		{"a", true},
		{"Support bot", true},
		{"ops-2.v_1", true},
		{"Ünïcødé 助手 ٣", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("é", 64), true},
		{strings.Repeat("x", 65), false},
		{strings.Repeat("é", 65), false},
		{"", false},
		{" a", false},
		{"-a", false},
		{".a", false},
		{"a/b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\u00a0b", false}, // a no-break space is not a space here
		{"a\xffb", false},
		{"emoji 🤖", false},
	}
	for _, tt := range tests {
		if got := validAssistantName(tt.name); got != tt.want || got != re.MatchString(tt.name) {
			t.Errorf("validAssistantName(%q) = %v, want %v (regexp: %v)", tt.name, got, tt.want, re.MatchString(tt.name))
		}
	}
}

func TestRetrievalSettingsValidate(t *testing.T) {
	half, neg := 0.5, -0.1
	tests := []struct {
		name string
		s    RetrievalSettings
		ok   bool
	}{
		{"zero is defaults", RetrievalSettings{}, true},
		{"full", RetrievalSettings{Limit: 10, MinScore: 0.2, Mode: SearchHybrid, Fusion: FusionAlpha, Alpha: &half, RRFK: 60, Rerank: true}, true},
		{"limit", RetrievalSettings{Limit: 51}, false},
		{"min score", RetrievalSettings{MinScore: 1.5}, false},
		{"alpha", RetrievalSettings{Alpha: &neg}, false},
		{"mode", RetrievalSettings{Mode: "semantic"}, false},
		{"fusion", RetrievalSettings{Fusion: "max"}, false},
		{"rrf k", RetrievalSettings{RRFK: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.s.Validate(); (err == nil) != tt.ok || (err != nil && ErrorCode(err) != EINVALID) {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestTrimHistory(t *testing.T) {
	turn := func(n int) *Turn { return &Turn{Content: strings.Repeat("word ", n)} }
	turns := []*Turn{turn(400), turn(40), turn(40), turn(40)}
	got := TrimHistory(turns, 120)
	if len(got) != 2 || got[0] != turns[2] || got[1] != turns[3] {
		t.Fatalf("kept %d turns, want the newest 2", len(got))
	}
	if got := TrimHistory(turns[:1], 10); len(got) != 1 {
		t.Fatalf("the newest turn must be kept even over budget, got %d", len(got))
	}
	if got := TrimHistory(nil, 10); len(got) != 0 {
		t.Fatalf("empty history: got %d", len(got))
	}
}

func TestCitationsFor(t *testing.T) {
	ps := []Passage{
		{ID: "a", Document: "a.md", Title: "A", Text: "alpha", HeadingPath: []string{"One", "Two"}},
		{ID: "b", Document: "b.md", Title: "B", Text: "beta"},
		{ID: "c", Document: "c.md", Title: "C", Text: "gamma"},
	}
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"cited in order", "See [3] and [1].", []string{"a", "c"}},
		{"duplicates and out of range", "[2] [2] [9] [0]", []string{"b"}},
		{"no markers: every passage", "Plain answer.", []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		got := citationsFor(tt.text, ps)
		var ids []string
		for _, c := range got {
			ids = append(ids, c.PassageID)
		}
		if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: cited %v, want %v", tt.name, ids, tt.want)
		}
	}
	if c := citationsFor("[1]", ps)[0]; c.Section != "One › Two" || c.Index != 1 || c.Snippet != "alpha" {
		t.Errorf("citation fields: %+v", c)
	}
	heading := []Passage{{ID: "h", Text: "## Create the app\n\nOpen the page.\n#hashtag stays"}}
	if got := citationsFor("[1]", heading)[0].Snippet; got != "Create the app Open the page. #hashtag stays" {
		t.Errorf("snippet keeps heading marks: %q", got)
	}
	if got := citationsFor("[1]", nil); got == nil || len(got) != 0 {
		t.Errorf("no passages: want an empty, non-nil list, got %#v", got)
	}
}

func TestPassageSection(t *testing.T) {
	tests := []struct {
		title string
		path  []string
		want  string
	}{
		{"Connect Slack", []string{"Connect Slack", "Tokens"}, "Tokens"},
		{"Connect Slack", []string{"connect slack "}, ""},
		{"Guide", []string{"Setup", "Tokens"}, "Setup › Tokens"},
		{"Guide", nil, ""},
	}
	for _, tt := range tests {
		if got := (Passage{Title: tt.title, HeadingPath: tt.path}).Section(); got != tt.want {
			t.Errorf("Section(%q, %q) = %q, want %q", tt.title, tt.path, got, tt.want)
		}
	}
}

func TestSnippet(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short  text\n here", 50, "short text here"},
		{"one two three four five", 12, "one two…"},
		{"ééééééééé", 4, "éééé…"},
	}
	for _, tt := range tests {
		if got := Snippet(tt.in, tt.max); got != tt.want {
			t.Errorf("Snippet(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestWatchStream(t *testing.T) {
	t.Run("relays until done", func(t *testing.T) {
		in := make(chan StreamEvent, 3)
		in <- StreamEvent{Kind: EventText, Text: "a"}
		in <- StreamEvent{Kind: EventText, Text: "b"}
		in <- StreamEvent{Kind: EventDone}
		var kinds []EventKind
		for ev := range WatchStream(context.Background(), in, time.Second, func() {}) {
			kinds = append(kinds, ev.Kind)
		}
		if len(kinds) != 3 || kinds[2] != EventDone {
			t.Fatalf("kinds = %v", kinds)
		}
	})
	t.Run("stall ends the stream", func(t *testing.T) {
		in := make(chan StreamEvent, 1)
		in <- StreamEvent{Kind: EventText, Text: "a"}
		cancelled := make(chan struct{})
		start := time.Now()
		var last StreamEvent
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The watchdog cancels the very context it sends on, as the engine uses it.
		for ev := range WatchStream(ctx, in, 50*time.Millisecond, func() { cancel(); close(cancelled) }) {
			last = ev
		}
		close(in)
		if last.Kind != EventError || ErrorCode(last.Err) != ETIMEOUT {
			t.Fatalf("last event = %+v, want a timeout error", last)
		}
		select {
		case <-cancelled:
		default:
			t.Fatal("the provider was not cancelled")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("watchdog took %s", d)
		}
	})
	// A provider that announces a wait (a rate limit's Retry-After) gets
	// the wait on top of the stall timeout; without the announcement the
	// same silence is a stall.
	for _, tt := range []struct {
		name string
		wait time.Duration
		want EventKind
	}{
		{"announced wait", 300 * time.Millisecond, EventDone},
		{"unannounced", 0, EventError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := make(chan StreamEvent)
			go func() {
				defer close(in)
				if tt.wait > 0 {
					in <- StreamEvent{Kind: EventWait, Wait: tt.wait}
				}
				time.Sleep(200 * time.Millisecond) // four stall timeouts
				select {
				case in <- StreamEvent{Kind: EventText, Text: "a"}:
				case <-time.After(time.Second):
					return
				}
				in <- StreamEvent{Kind: EventDone}
			}()
			var last StreamEvent
			for ev := range WatchStream(context.Background(), in, 50*time.Millisecond, func() {}) {
				last = ev
			}
			if last.Kind != tt.want {
				t.Fatalf("last event = %+v, want kind %d", last, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	base := Errorf(ENOTFOUND, "No such thing.")
	wrapped := errors.Join(errors.New("context"), base)
	if ErrorCode(wrapped) != ENOTFOUND || ErrorMessage(wrapped) != "No such thing." {
		t.Errorf("code/message lost through wrapping: %q %q", ErrorCode(wrapped), ErrorMessage(wrapped))
	}
	plain := errors.New("dial tcp: refused")
	if ErrorCode(plain) != EINTERNAL || ErrorMessage(plain) != "Internal error." {
		t.Errorf("plain error: %q %q", ErrorCode(plain), ErrorMessage(plain))
	}
	if ErrorCode(nil) != "" {
		t.Error("nil error has a code")
	}
}

func TestSecrets(t *testing.T) {
	tok, h := NewSecret("cs_")
	if !strings.HasPrefix(tok, "cs_") || HashSecret(tok) != h || len(tok) < 40 {
		t.Errorf("NewSecret: %q %q", tok, h)
	}
	a, b := NewID(), NewID()
	if len(a) != 26 || a == b {
		t.Errorf("NewID: %q %q", a, b)
	}
	time.Sleep(2 * time.Millisecond)
	if c := NewID(); c <= a {
		t.Errorf("NewID is not time-sortable: %q then %q", a, c)
	}
}

func TestTriggerFor(t *testing.T) {
	all := []*Assistant{
		{Name: "b", Bindings: []Binding{{Platform: PlatformSlack, ChannelID: "C1", Trigger: TriggerAll}}},
		{Name: "a", Bindings: []Binding{
			{Platform: PlatformSlack, ChannelID: "C1", Trigger: TriggerMention},
			{Platform: PlatformSlack, ChannelID: ChannelAnywhere, Trigger: TriggerAll},
			{Platform: PlatformSlack, ChannelID: ChannelAnyDM, Trigger: TriggerMention},
			{Platform: PlatformDiscord, ChannelID: "C2"},
		}},
	}
	tests := []struct {
		name string
		ch   Channel
		want Trigger
	}{
		{"exact binding, first assistant by name", Channel{Platform: PlatformSlack, ID: "C1"}, TriggerMention},
		{"every channel", Channel{Platform: PlatformSlack, ID: "C9"}, TriggerAll},
		{"every DM", Channel{Platform: PlatformSlack, ID: "D1", DM: true}, TriggerMention},
		{"binding without a trigger", Channel{Platform: PlatformDiscord, ID: "C2"}, DefaultTrigger},
		{"no binding", Channel{Platform: PlatformMattermost, ID: "C1"}, DefaultTrigger},
	}
	for _, tt := range tests {
		if got := TriggerFor(all, tt.ch); got != tt.want {
			t.Errorf("%s: TriggerFor = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSystemPromptThreadContext(t *testing.T) {
	got, err := renderSystemPrompt(&Assistant{SystemPrompt: "Be brief."}, nil, []ThreadLine{{User: "Ada", Text: "Deploy failed."}, {User: "Bob", Text: "Raise the limit."}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "Be brief.") || !strings.Contains(got, "Ada: Deploy failed.\nBob: Raise the limit.") {
		t.Errorf("system prompt:\n%s", got)
	}
	plain, err := renderSystemPrompt(&Assistant{SystemPrompt: "Be brief."}, nil, nil)
	if err != nil || plain != "Be brief." {
		t.Errorf("without context: %q, %v", plain, err)
	}
}

func TestAnswerDisplay(t *testing.T) {
	tests := []struct {
		a    Answer
		want string
	}{
		{Answer{Text: " Done. "}, "Done."},
		{Answer{Notice: "The model is down."}, "⚠️ The model is down."},
		{Answer{Text: "Partial", Notice: "Interrupted."}, "Partial\n\n⚠️ _Interrupted._"},
		{Answer{}, "I have no answer to that."},
	}
	for _, tt := range tests {
		if got := tt.a.Display(); got != tt.want {
			t.Errorf("Display(%+v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}
