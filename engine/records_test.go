package engine

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

var (
	// testNow is a time as a caller has it: not in UTC, with nanoseconds.
	testNow = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
	// storedNow is testNow as the stores keep it.
	storedNow = time.Date(2025, 3, 4, 4, 6, 7, 123456000, time.UTC)
	// earlier is another time as a caller has it, and storedEarlier as kept.
	earlier       = time.Date(2024, 12, 31, 23, 59, 59, 999999999, time.FixedZone("PST", -8*3600))
	storedEarlier = time.Date(2025, 1, 1, 7, 59, 59, 999999000, time.UTC)
)

// normalizeTest is a case of a record's Normalize (or Validate): in becomes
// want, or the call fails with code.
type normalizeTest[T any] struct {
	name     string
	in, want T
	code     string
}

// runNormalizeTests runs normalize on a copy of each case's in. When id is
// not nil it returns the record's ID: a preset ID must be kept, and an empty
// one filled with a new ID, which is then cleared so that the record
// compares equal to a want without an ID.
func runNormalizeTests[T any](t *testing.T, tests []normalizeTest[T], normalize func(*T) error, id func(*T) *string) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			err := normalize(&got)
			if code := ErrorCode(err); code != tt.code {
				t.Fatalf("code = %q (%v), want %q", code, err, tt.code)
			}
			if err != nil {
				if e := (*Error)(nil); !errors.As(err, &e) || e.Message == "" {
					t.Fatalf("error %v has no message for the user", err)
				}
				return
			}
			if id != nil {
				preset, gotID := *id(&tt.in), id(&got)
				switch {
				case preset != "" && *gotID != preset:
					t.Fatalf("ID = %q, want the preset %q", *gotID, preset)
				case preset == "" && len(*gotID) != 26:
					t.Fatalf("ID = %q, want a new ID", *gotID)
				case preset == "":
					*gotID = ""
				}
			}
			mustDeepEqual(t, got, tt.want)
		})
	}
}

func mustDeepEqual[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestStoredTime(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zero stays zero", time.Time{}, time.Time{}},
		{"zero in another zone stays zero", time.Time{}.In(time.FixedZone("X", 3600)), time.Time{}},
		{"UTC, truncated to microseconds", testNow, storedNow},
		{"truncated, not rounded", earlier, storedEarlier},
		{"stored stays the same", storedNow, storedNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StoredTime(tt.in)
			if !got.Equal(tt.want) || got.Location() != tt.want.Location() || got.IsZero() != tt.want.IsZero() {
				t.Fatalf("StoredTime(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestUserValidate(t *testing.T) {
	tests := []normalizeTest[User]{
		{"trims the name", User{Name: "  alice ", Role: RoleAdmin}, User{Name: "alice", Role: RoleAdmin}, ""},
		{"keeps other fields", User{ID: "u1", Name: "bob", Role: RoleViewer, Disabled: true, CreatedAt: earlier},
			User{ID: "u1", Name: "bob", Role: RoleViewer, Disabled: true, CreatedAt: earlier}, ""},
		{"empty name", User{Name: "", Role: RoleAdmin}, User{}, EINVALID},
		{"blank name", User{Name: " \t", Role: RoleAdmin}, User{}, EINVALID},
		{"no role", User{Name: "carol"}, User{}, EINVALID},
		{"unknown role", User{Name: "carol", Role: "root"}, User{}, EINVALID},
	}
	runNormalizeTests(t, tests, (*User).Validate, nil)
}

func TestUserNormalize(t *testing.T) {
	tests := []normalizeTest[User]{
		{"new", User{Name: " alice ", Role: RoleAdmin},
			User{Name: "alice", Role: RoleAdmin, CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"preset id, given times replaced", User{ID: "u1", Name: "bob", Role: RoleEditor, CreatedAt: earlier, UpdatedAt: earlier},
			User{ID: "u1", Name: "bob", Role: RoleEditor, CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"invalid", User{Name: "eve", Role: "root"}, User{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(u *User) error { return u.Normalize(testNow) }, func(u *User) *string { return &u.ID })
}

func TestSessionNormalize(t *testing.T) {
	tests := []normalizeTest[Session]{
		{"new", Session{UserID: "u1", TokenHash: "h", ExpiresAt: earlier},
			Session{UserID: "u1", TokenHash: "h", CreatedAt: storedNow, ExpiresAt: storedEarlier, LastSeenAt: storedNow}, ""},
		{"preset id", Session{ID: "s1", UserID: "u1", TokenHash: "h", ExpiresAt: storedEarlier, CreatedAt: earlier},
			Session{ID: "s1", UserID: "u1", TokenHash: "h", CreatedAt: storedNow, ExpiresAt: storedEarlier, LastSeenAt: storedNow}, ""},
		{"no user", Session{TokenHash: "h", ExpiresAt: earlier}, Session{}, EINVALID},
		{"no token hash", Session{UserID: "u1", ExpiresAt: earlier}, Session{}, EINVALID},
		{"no expiry", Session{UserID: "u1", TokenHash: "h"}, Session{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(s *Session) error { return s.Normalize(testNow) }, func(s *Session) *string { return &s.ID })
}

func TestAPITokenNormalize(t *testing.T) {
	tests := []normalizeTest[APIToken]{
		{"new, never used", APIToken{UserID: "u1", Name: " ci ", TokenHash: "h"},
			APIToken{UserID: "u1", Name: "ci", TokenHash: "h", CreatedAt: storedNow}, ""},
		{"preset id and last use", APIToken{ID: "t1", UserID: "u1", Name: "ci", TokenHash: "h", LastUsedAt: earlier},
			APIToken{ID: "t1", UserID: "u1", Name: "ci", TokenHash: "h", CreatedAt: storedNow, LastUsedAt: storedEarlier}, ""},
		{"no user", APIToken{Name: "ci", TokenHash: "h"}, APIToken{}, EINVALID},
		{"blank name", APIToken{UserID: "u1", Name: "  ", TokenHash: "h"}, APIToken{}, EINVALID},
		{"no token hash", APIToken{UserID: "u1", Name: "ci"}, APIToken{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(tok *APIToken) error { return tok.Normalize(testNow) }, func(tok *APIToken) *string { return &tok.ID })
}

func TestAssistantNormalize(t *testing.T) {
	tests := []normalizeTest[Assistant]{
		{"new: validated, empty lists", Assistant{Name: " Helper ", Temperature: 0.5},
			Assistant{Name: "Helper", Temperature: 0.5, KnowledgeBases: []string{}, Tools: []string{}, Bindings: []Binding{},
				CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"preset id", Assistant{ID: "a1", Name: "Helper", Tools: []string{"search"}, CreatedAt: earlier},
			Assistant{ID: "a1", Name: "Helper", KnowledgeBases: []string{}, Tools: []string{"search"}, Bindings: []Binding{},
				CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"invalid", Assistant{Name: "a/b"}, Assistant{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(a *Assistant) error { return a.Normalize(testNow) }, func(a *Assistant) *string { return &a.ID })
}

func TestKnowledgeBaseNormalize(t *testing.T) {
	tests := []normalizeTest[KnowledgeBase]{
		{"new", KnowledgeBase{Name: "docs", Description: "Docs"},
			KnowledgeBase{Name: "docs", Description: "Docs", CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"preset id", KnowledgeBase{ID: "k1", Name: "docs"},
			KnowledgeBase{ID: "k1", Name: "docs", CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"invalid name", KnowledgeBase{Name: "Docs!"}, KnowledgeBase{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(kb *KnowledgeBase) error { return kb.Normalize(testNow) }, func(kb *KnowledgeBase) *string { return &kb.ID })
}

func TestNameTakenErrors(t *testing.T) {
	cause := errors.New("unique violation")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"user", (&User{Name: "alice"}).NameTakenError(cause), `A user named "alice" already exists: choose another name.`},
		{"assistant", (&Assistant{Name: "Helper"}).NameTakenError(cause), `An assistant named "Helper" already exists: choose another name.`},
		{"knowledge base", (&KnowledgeBase{Name: "docs"}).NameTakenError(cause), `A knowledge base named "docs" already exists: choose another name.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ErrorCode(tt.err) != ECONFLICT || ErrorMessage(tt.err) != tt.want || !errors.Is(tt.err, cause) {
				t.Fatalf("got code %q, message %q (cause kept: %v), want conflict %q",
					ErrorCode(tt.err), ErrorMessage(tt.err), errors.Is(tt.err, cause), tt.want)
			}
		})
	}
}

func TestConversationNormalize(t *testing.T) {
	tests := []normalizeTest[Conversation]{
		{"new", Conversation{Platform: PlatformSlack, ChannelID: "C1", ThreadID: "T1"},
			Conversation{Platform: PlatformSlack, ChannelID: "C1", ThreadID: "T1", CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"preset id", Conversation{ID: "c1", Platform: PlatformConsole, UserID: "u1", Title: "Hi"},
			Conversation{ID: "c1", Platform: PlatformConsole, UserID: "u1", Title: "Hi", CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"no platform", Conversation{ChannelID: "C1"}, Conversation{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(c *Conversation) error { return c.Normalize(testNow) }, func(c *Conversation) *string { return &c.ID })
}

func TestConversationFilterNormalize(t *testing.T) {
	tests := []normalizeTest[ConversationFilter]{
		{"defaults", ConversationFilter{}, ConversationFilter{Limit: DefaultConversationLimit}, ""},
		{"negative limit and offset", ConversationFilter{Limit: -1, Offset: -5}, ConversationFilter{Limit: DefaultConversationLimit}, ""},
		{"kept", ConversationFilter{Platform: PlatformSlack, AssistantID: "a", UserID: "u", ChannelID: "c", Limit: 7, Offset: 3},
			ConversationFilter{Platform: PlatformSlack, AssistantID: "a", UserID: "u", ChannelID: "c", Limit: 7, Offset: 3}, ""},
		{"times as stored", ConversationFilter{Since: earlier, Until: testNow, Limit: 1},
			ConversationFilter{Since: storedEarlier, Until: storedNow, Limit: 1}, ""},
	}
	runNormalizeTests(t, tests, func(f *ConversationFilter) error { f.Normalize(); return nil }, nil)
}

func TestTurnNormalize(t *testing.T) {
	cites := []Citation{{Index: 1, Document: "guide.md"}}
	tests := []normalizeTest[Turn]{
		{"new, created now", Turn{ConversationID: "c1", Role: TurnUser, Content: "hi"},
			Turn{ConversationID: "c1", Role: TurnUser, Content: "hi", CreatedAt: storedNow}, ""},
		{"preset id and time", Turn{ID: "t1", ConversationID: "c1", Role: TurnAssistant, Citations: cites, CreatedAt: earlier},
			Turn{ID: "t1", ConversationID: "c1", Role: TurnAssistant, Citations: cites, CreatedAt: storedEarlier}, ""},
		{"no conversation", Turn{Role: TurnUser}, Turn{}, EINVALID},
		{"no role", Turn{ConversationID: "c1"}, Turn{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(tr *Turn) error { return tr.Normalize(testNow) }, func(tr *Turn) *string { return &tr.ID })
}

func TestTraceNormalize(t *testing.T) {
	tests := []struct {
		name          string
		id            string // "" wants a new ID
		startedAt     time.Time
		wantStartedAt time.Time
	}{
		{"new, started now", "", time.Time{}, storedNow},
		{"preset id, start as stored", "tr1", earlier, storedEarlier},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &Trace{ID: tt.id, StartedAt: tt.startedAt, Outcome: OutcomeAnswered}
			tr.Normalize(testNow)
			switch {
			case tt.id == "" && len(tr.ID) != 26:
				t.Fatalf("ID = %q, want a new ID", tr.ID)
			case tt.id != "" && tr.ID != tt.id:
				t.Fatalf("ID = %q, want %q", tr.ID, tt.id)
			}
			if !tr.StartedAt.Equal(tt.wantStartedAt) || tr.StartedAt.Location() != time.UTC {
				t.Fatalf("StartedAt = %v, want %v", tr.StartedAt, tt.wantStartedAt)
			}
			if tr.Outcome != OutcomeAnswered {
				t.Fatalf("Outcome = %q, want it kept", tr.Outcome)
			}
		})
	}
}

func TestTraceStoredSteps(t *testing.T) {
	tests := []struct {
		name  string
		steps []TraceStep
		want  []TraceStep
	}{
		{"none", nil, nil},
		{"empty", []TraceStep{}, []TraceStep{}},
		{"times as stored, the rest kept",
			[]TraceStep{
				{Name: StepReceived, StartedAt: testNow, Duration: time.Millisecond},
				{Name: StepModel, StartedAt: earlier, Detail: "d", Error: "e"},
				{Name: StepPosted},
			},
			[]TraceStep{
				{Name: StepReceived, StartedAt: storedNow, Duration: time.Millisecond},
				{Name: StepModel, StartedAt: storedEarlier, Detail: "d", Error: "e"},
				{Name: StepPosted},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []TraceStep
			if tt.steps != nil {
				before = append([]TraceStep{}, tt.steps...)
			}
			tr := &Trace{Steps: tt.steps}
			mustDeepEqual(t, tr.StoredSteps(), tt.want)
			mustDeepEqual(t, tr.Steps, before) // the trace's own steps are left alone
		})
	}
}

func TestDocumentNormalize(t *testing.T) {
	tests := []normalizeTest[Document]{
		{"new, pending", Document{KnowledgeBase: "docs", Source: "a.md", Content: []byte("# A")},
			Document{KnowledgeBase: "docs", Source: "a.md", Content: []byte("# A"), Status: DocumentPending,
				CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"preset id and status, nil content kept", Document{ID: "d1", KnowledgeBase: "docs", Source: "a.md", Status: DocumentIndexed, Chunks: 3},
			Document{ID: "d1", KnowledgeBase: "docs", Source: "a.md", Status: DocumentIndexed, Chunks: 3,
				CreatedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"no knowledge base", Document{Source: "a.md"}, Document{}, EINVALID},
		{"no source", Document{KnowledgeBase: "docs"}, Document{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(d *Document) error { return d.Normalize(testNow) }, func(d *Document) *string { return &d.ID })
}

func TestInboxEventNormalize(t *testing.T) {
	tests := []normalizeTest[InboxEvent]{
		{"new: own thread, due now, empty payload",
			InboxEvent{Platform: PlatformSlack, EventID: "Ev1"},
			InboxEvent{Platform: PlatformSlack, EventID: "Ev1", ThreadKey: "slack:Ev1", Payload: []byte{},
				Status: EventPending, AvailableAt: storedNow, ReceivedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"given values kept, times as stored",
			InboxEvent{ID: "e1", Platform: PlatformDiscord, EventID: "Ev2", ThreadKey: "t", Payload: []byte("{}"),
				ReceivedAt: earlier, AvailableAt: testNow.Add(time.Hour)},
			InboxEvent{ID: "e1", Platform: PlatformDiscord, EventID: "Ev2", ThreadKey: "t", Payload: []byte("{}"),
				Status: EventPending, ReceivedAt: storedEarlier, AvailableAt: storedNow.Add(time.Hour), UpdatedAt: storedNow}, ""},
		{"queue state reset",
			InboxEvent{Platform: PlatformMattermost, EventID: "Ev3", Status: EventDead, Attempts: 4, LeaseOwner: "w1",
				LeasedUntil: testNow, LastError: "boom", UpdatedAt: earlier},
			InboxEvent{Platform: PlatformMattermost, EventID: "Ev3", ThreadKey: "mattermost:Ev3", Payload: []byte{},
				Status: EventPending, AvailableAt: storedNow, ReceivedAt: storedNow, UpdatedAt: storedNow}, ""},
		{"no platform", InboxEvent{EventID: "Ev1"}, InboxEvent{}, EINVALID},
		{"no event id", InboxEvent{Platform: PlatformSlack}, InboxEvent{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(e *InboxEvent) error { return e.Normalize(testNow) }, func(e *InboxEvent) *string { return &e.ID })
}

func TestOutboundMessageNormalize(t *testing.T) {
	tests := []normalizeTest[OutboundMessage]{
		{"created now", OutboundMessage{Platform: PlatformSlack, EventID: "Ev1", ChannelID: "C1", MessageID: "1.2"},
			OutboundMessage{Platform: PlatformSlack, EventID: "Ev1", ChannelID: "C1", MessageID: "1.2", CreatedAt: storedNow}, ""},
		{"given time as stored", OutboundMessage{Platform: PlatformSlack, EventID: "Ev1", Part: 2, MessageID: "1.3", CreatedAt: earlier},
			OutboundMessage{Platform: PlatformSlack, EventID: "Ev1", Part: 2, MessageID: "1.3", CreatedAt: storedEarlier}, ""},
		{"no platform", OutboundMessage{EventID: "Ev1", MessageID: "1.2"}, OutboundMessage{}, EINVALID},
		{"no event id", OutboundMessage{Platform: PlatformSlack, MessageID: "1.2"}, OutboundMessage{}, EINVALID},
		{"no message id", OutboundMessage{Platform: PlatformSlack, EventID: "Ev1"}, OutboundMessage{}, EINVALID},
		{"negative part", OutboundMessage{Platform: PlatformSlack, EventID: "Ev1", MessageID: "1.2", Part: -1}, OutboundMessage{}, EINVALID},
	}
	runNormalizeTests(t, tests, func(m *OutboundMessage) error { return m.Normalize(testNow) }, nil)
}
