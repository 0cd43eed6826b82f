package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// newApproval is a pending approval with every field set but those the
// store fills in.
func newApproval(eventID string) *engine.ToolApproval {
	at := time.Now()
	return &engine.ToolApproval{
		TraceID:        "trace-" + eventID,
		EventID:        eventID,
		AssistantID:    "A1",
		AssistantName:  "ops",
		ConversationID: "conv-" + eventID,
		Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: "C1", Name: "ops"},
			ID: "T-" + eventID},
		User: engine.ChatUser{ID: "U1", Name: "Ada", Email: "ada@example.com"},
		Calls: []engine.ToolCall{
			{ID: "call1", Name: "files__read", Arguments: `{"path": "/etc/motd"}`},
			{ID: "call2", Name: "web__fetch", Arguments: `{"url":"https://example.com/?q=a&b=<c>"}`},
		},
		State:     []byte{0, 1, 2, 0xff, 0xfe, '{', 0},
		CreatedAt: at,
		ExpiresAt: at.Add(engine.DefaultApprovalTTL),
	}
}

func mustApproval(t *testing.T, s engine.Store, ap *engine.ToolApproval) *engine.ToolApproval {
	t.Helper()
	Must(t, s.CreateApproval(t.Context(), ap))
	return ap
}

func testApprovals(t *testing.T, s engine.Store) {
	ctx := t.Context()
	elsewhere := time.FixedZone("UTC+5", 5*3600)
	taken := mustApproval(t, s, newApproval("taken"))
	tests := []struct {
		name string
		in   func() *engine.ToolApproval
		code string // "" for success
		want func(in, got *engine.ToolApproval) *engine.ToolApproval
	}{
		{
			name: "all fields",
			in: func() *engine.ToolApproval {
				ap := newApproval("Ev1")
				ap.CreatedAt = ap.CreatedAt.In(elsewhere) // stored in UTC, microseconds
				ap.ExpiresAt = ap.ExpiresAt.In(elsewhere)
				return ap
			},
			want: func(in, got *engine.ToolApproval) *engine.ToolApproval {
				w := *in
				w.ID, w.Status = got.ID, engine.ApprovalPending
				w.CreatedAt, w.ExpiresAt = stored(in.CreatedAt), stored(in.ExpiresAt)
				return &w
			},
		},
		{
			name: "given id and a decision",
			in: func() *engine.ToolApproval {
				ap := newApproval("Ev2")
				ap.ID, ap.Status, ap.DecidedBy, ap.DecidedAt = "ap-decided", engine.ApprovalRejected, "console:ada", time.Now()
				return ap
			},
			want: func(in, got *engine.ToolApproval) *engine.ToolApproval {
				w := *in
				w.CreatedAt, w.ExpiresAt, w.DecidedAt = stored(in.CreatedAt), stored(in.ExpiresAt), stored(in.DecidedAt)
				return &w
			},
		},
		{
			name: "bare",
			in:   func() *engine.ToolApproval { return &engine.ToolApproval{} },
			want: func(in, got *engine.ToolApproval) *engine.ToolApproval {
				if got.CreatedAt.IsZero() {
					t.Fatal("CreatedAt of a bare approval is zero")
				}
				// A nil State is stored empty; nil Calls and a zero
				// ExpiresAt stay so.
				return &engine.ToolApproval{ID: got.ID, Status: engine.ApprovalPending, State: []byte{}, CreatedAt: got.CreatedAt}
			},
		},
		{
			name: "empty calls",
			in: func() *engine.ToolApproval {
				ap := newApproval("Ev3")
				ap.Calls = []engine.ToolCall{}
				return ap
			},
			want: func(in, got *engine.ToolApproval) *engine.ToolApproval {
				w := *in
				w.ID, w.Status = got.ID, engine.ApprovalPending
				w.CreatedAt, w.ExpiresAt = stored(in.CreatedAt), stored(in.ExpiresAt)
				return &w
			},
		},
		{
			name: "unknown status",
			in: func() *engine.ToolApproval {
				ap := newApproval("Ev4")
				ap.Status = "maybe"
				return ap
			},
			code: engine.EINVALID,
		},
		{
			name: "taken id",
			in: func() *engine.ToolApproval {
				ap := newApproval("Ev5")
				ap.ID = taken.ID
				return ap
			},
			code: engine.ECONFLICT,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ap := tt.in()
			in := *ap
			err := s.CreateApproval(ctx, ap)
			if tt.code != "" {
				MustCode(t, err, tt.code)
				return
			}
			Must(t, err)
			if ap.ID == "" {
				t.Fatal("CreateApproval left ID empty")
			}
			mustStoredTime(t, "CreatedAt", ap.CreatedAt)
			want := tt.want(&in, ap)
			MustEqual(t, "approval filled by CreateApproval", ap, want)
			got, err := s.ApprovalByID(ctx, ap.ID)
			Must(t, err)
			MustEqual(t, "ApprovalByID", got, want)
		})
	}
	got, err := s.ApprovalByID(ctx, taken.ID)
	Must(t, err)
	MustEqual(t, "approval after a create with its id", got, taken)
	_, err = s.ApprovalByID(ctx, "no-such-approval")
	MustCode(t, err, engine.ENOTFOUND)
}

// mustResumeEvent is the engine's resumption event of ap.
func mustResumeEvent(t *testing.T, ap *engine.ToolApproval) *engine.InboxEvent {
	t.Helper()
	e, err := engine.ResumeEvent(ap, time.Now())
	Must(t, err)
	return e
}

func testDecideApproval(t *testing.T, s engine.Store) {
	ctx := t.Context()
	ap := mustApproval(t, s, newApproval("Ev1"))
	resume := mustResumeEvent(t, ap)
	payload := resume.Payload
	at := time.Now().Add(time.Second).In(time.FixedZone("UTC-3", -3*3600))

	decided, err := s.DecideApproval(ctx, ap.ID, engine.ApprovalApproved, "slack:Ada", at, resume)
	Must(t, err)
	want := *ap
	want.Status, want.DecidedBy, want.DecidedAt = engine.ApprovalApproved, "slack:Ada", stored(at)
	MustEqual(t, "decided approval", decided, &want)
	got, err := s.ApprovalByID(ctx, ap.ID)
	Must(t, err)
	MustEqual(t, "ApprovalByID after the decision", got, &want)

	// The resumption is in the inbox, as Enqueue stores an event, and a
	// worker claims it.
	if resume.ID == "" || resume.Status != engine.EventPending {
		t.Fatalf("resume event filled as %+v", resume)
	}
	ev, err := s.InboxEventByID(ctx, resume.ID)
	Must(t, err)
	MustEqual(t, "stored resume event", ev, resume)
	claimed := mustClaim(t, s, "w1", time.Hour, resume)
	MustEqual(t, "claimed event id", claimed.EventID, engine.ApprovalEventID(ap.ID))
	MustEqual(t, "claimed thread key", claimed.ThreadKey, ap.Thread.Key())
	MustEqual(t, "claimed payload", string(claimed.Payload), string(payload))
	var msg engine.Message
	Must(t, json.Unmarshal(claimed.Payload, &msg))
	if msg.Resume == nil || msg.Resume.ApprovalID != ap.ID || msg.Thread != ap.Thread || msg.User != ap.User {
		t.Fatalf("resume message %+v", msg)
	}
	Must(t, s.Complete(ctx, claimed.ID, "w1"))

	// Deciding again changes nothing, enqueues nothing, and returns the
	// first decision.
	again := &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: "second-decision", Payload: []byte(`{}`)}
	got, err = s.DecideApproval(ctx, ap.ID, engine.ApprovalRejected, "slack:Bob", time.Now(), again)
	MustCode(t, err, engine.ECONFLICT)
	MustEqual(t, "approval returned with the conflict", got, &want)
	got, err = s.ApprovalByID(ctx, ap.ID)
	Must(t, err)
	MustEqual(t, "approval after deciding again", got, &want)
	mustClaimNothing(t, s)
	mustEnqueue(t, s, again) // it was not stored

	tests := []struct {
		name   string
		status engine.ApprovalStatus
		id     func(ap *engine.ToolApproval) string
		resume func(t *testing.T, ap *engine.ToolApproval) *engine.InboxEvent
		code   string // "" for success
		// resumed: the approval's resume event is in the inbox afterwards,
		// with the payload stored (the resume event's when empty).
		resumed bool
		stored  string
	}{
		{
			name: "reject without resuming", status: engine.ApprovalRejected,
		},
		{
			name: "expire", status: engine.ApprovalExpired,
		},
		{
			name:    "approve with a resume event",
			status:  engine.ApprovalApproved,
			resume:  mustResumeEvent,
			resumed: true,
		},
		{
			name:   "resume event stored already",
			status: engine.ApprovalApproved,
			resume: func(t *testing.T, ap *engine.ToolApproval) *engine.InboxEvent {
				first := mustResumeEvent(t, ap)
				first.Payload = []byte(`{"delivered":"first"}`)
				mustEnqueue(t, s, first)
				return mustResumeEvent(t, ap)
			},
			resumed: true,
			stored:  `{"delivered":"first"}`,
		},
		{
			name: "missing approval", status: engine.ApprovalApproved, code: engine.ENOTFOUND,
			id:     func(*engine.ToolApproval) string { return "no-such-approval" },
			resume: mustResumeEvent,
		},
		{
			name: "pending is no decision", status: engine.ApprovalPending, code: engine.EINVALID,
		},
		{
			name: "unknown status", status: "maybe", code: engine.EINVALID,
		},
		{
			name: "invalid resume event", status: engine.ApprovalApproved, code: engine.EINVALID,
			resume: func(*testing.T, *engine.ToolApproval) *engine.InboxEvent {
				return &engine.InboxEvent{Platform: engine.PlatformSlack}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ap := mustApproval(t, s, newApproval(fmt.Sprintf("case%d", i)))
			id := ap.ID
			if tt.id != nil {
				id = tt.id(ap)
			}
			var resume *engine.InboxEvent
			if tt.resume != nil {
				resume = tt.resume(t, ap)
			}
			var payload []byte
			if resume != nil {
				payload = resume.Payload
			}
			at := time.Now()
			got, err := s.DecideApproval(ctx, id, tt.status, "console:ada", at, resume)
			if tt.code != "" {
				MustCode(t, err, tt.code)
				// Nothing changed.
				stored, err := s.ApprovalByID(ctx, ap.ID)
				Must(t, err)
				MustEqual(t, "approval after a failed decision", stored, ap)
				if tt.code != engine.ENOTFOUND || resume == nil {
					return
				}
				if inserted, err := s.Enqueue(ctx, resume); err != nil || !inserted {
					t.Fatalf("resume event of a failed decision was stored (inserted %v, err %v)", inserted, err)
				}
				return
			}
			Must(t, err)
			want := *ap
			want.Status, want.DecidedBy, want.DecidedAt = tt.status, "console:ada", stored(at)
			MustEqual(t, "decided approval", got, &want)
			if !tt.resumed {
				return
			}
			wantPayload := tt.stored
			if wantPayload == "" {
				wantPayload = string(payload)
			}
			dup := &engine.InboxEvent{Platform: ap.Thread.Channel.Platform, EventID: engine.ApprovalEventID(ap.ID)}
			inserted, err := s.Enqueue(ctx, dup)
			Must(t, err)
			if inserted {
				t.Fatal("the resume event was not stored")
			}
			MustEqual(t, "stored resume payload", string(dup.Payload), wantPayload)
			MustEqual(t, "stored resume thread key", dup.ThreadKey, ap.Thread.Key())
		})
	}
}

// testDecideApprovalConcurrently decides one approval from several
// goroutines at once: one decision wins, the others get ECONFLICT with
// the winner's decision, and only the winner's resume event is stored.
func testDecideApprovalConcurrently(t *testing.T, s engine.Store) {
	ctx := t.Context()
	ap := mustApproval(t, s, newApproval("Ev1"))
	const deciders = 5
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
		seen []*engine.ToolApproval
	)
	for i := range deciders {
		who := fmt.Sprintf("slack:U%d", i)
		wg.Go(func() {
			resume := &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: "resume-" + who, ThreadKey: ap.Thread.Key()}
			got, err := s.DecideApproval(ctx, ap.ID, engine.ApprovalApproved, who, time.Now(), resume)
			mu.Lock()
			defer mu.Unlock()
			switch engine.ErrorCode(err) {
			case "":
				wins = append(wins, who)
			case engine.ECONFLICT:
			default:
				t.Errorf("DecideApproval by %s: %v", who, err)
				return
			}
			seen = append(seen, got)
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("decisions that won: %v, want one", wins)
	}
	for _, got := range seen {
		if got == nil || got.Status != engine.ApprovalApproved || got.DecidedBy != wins[0] {
			t.Fatalf("approval returned to a decider: %+v, want decided by %s", got, wins[0])
		}
	}
	e, err := s.Claim(ctx, "w1", time.Hour)
	Must(t, err)
	MustEqual(t, "the resume event", e.EventID, "resume-"+wins[0])
	mustClaimNothing(t, s)
}

func testListApprovals(t *testing.T, s engine.Store) {
	ctx := t.Context()
	base := time.Now().Add(-time.Hour)
	created := []struct {
		id     string
		status engine.ApprovalStatus
		minute int
	}{
		{"ap-1", engine.ApprovalPending, 1},
		{"ap-2", engine.ApprovalApproved, 2},
		{"ap-3", engine.ApprovalPending, 3},
		{"ap-4", engine.ApprovalRejected, 4},
		{"ap-5a", engine.ApprovalPending, 5}, // two at the same time: by id, descending
		{"ap-5b", engine.ApprovalPending, 5},
		{"ap-6", engine.ApprovalExpired, 6},
	}
	for _, c := range created {
		ap := newApproval(c.id)
		ap.ID, ap.Status, ap.CreatedAt = c.id, c.status, base.Add(time.Duration(c.minute)*time.Minute)
		mustApproval(t, s, ap)
	}
	tests := []struct {
		name   string
		filter engine.ApprovalFilter
		want   []string
	}{
		{"all", engine.ApprovalFilter{}, []string{"ap-6", "ap-5b", "ap-5a", "ap-4", "ap-3", "ap-2", "ap-1"}},
		{"pending", engine.ApprovalFilter{Status: engine.ApprovalPending}, []string{"ap-5b", "ap-5a", "ap-3", "ap-1"}},
		{"pending, limited", engine.ApprovalFilter{Status: engine.ApprovalPending, Limit: 2}, []string{"ap-5b", "ap-5a"}},
		{"approved", engine.ApprovalFilter{Status: engine.ApprovalApproved}, []string{"ap-2"}},
		{"limited", engine.ApprovalFilter{Limit: 3}, []string{"ap-6", "ap-5b", "ap-5a"}},
		{"negative limit is the default", engine.ApprovalFilter{Limit: -1}, []string{"ap-6", "ap-5b", "ap-5a", "ap-4", "ap-3", "ap-2", "ap-1"}},
		{"unknown status", engine.ApprovalFilter{Status: "maybe"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.ListApprovals(ctx, tt.filter)
			Must(t, err)
			ids := []string{}
			for _, ap := range list {
				ids = append(ids, ap.ID)
			}
			MustEqual(t, "ListApprovals", ids, tt.want)
		})
	}
	// Listed approvals are whole.
	list, err := s.ListApprovals(ctx, engine.ApprovalFilter{Status: engine.ApprovalApproved})
	Must(t, err)
	got, err := s.ApprovalByID(ctx, "ap-2")
	Must(t, err)
	MustEqual(t, "listed approval", list, []*engine.ToolApproval{got})

	// A decision moves an approval between the statuses listed.
	_, err = s.DecideApproval(ctx, "ap-3", engine.ApprovalApproved, "console:ada", time.Now(), nil)
	Must(t, err)
	list, err = s.ListApprovals(ctx, engine.ApprovalFilter{Status: engine.ApprovalApproved})
	Must(t, err)
	MustEqual(t, "approved after a decision", len(list), 2)
	MustEqual(t, "newest approved", list[0].ID, "ap-3")

	// By event: a retried event asked again.
	again := newApproval("ap-1")
	again.ID, again.CreatedAt = "ap-7", base.Add(7*time.Minute)
	mustApproval(t, s, again)
	for _, tt := range []struct {
		name   string
		filter engine.ApprovalFilter
		want   []string
	}{
		{"by event", engine.ApprovalFilter{EventID: "ap-1"}, []string{"ap-7", "ap-1"}},
		{"by event and status", engine.ApprovalFilter{EventID: "ap-1", Status: engine.ApprovalPending, Limit: 1}, []string{"ap-7"}},
		{"by another event", engine.ApprovalFilter{EventID: "ap-4", Status: engine.ApprovalPending}, []string{}},
	} {
		list, err := s.ListApprovals(ctx, tt.filter)
		Must(t, err)
		ids := []string{}
		for _, ap := range list {
			ids = append(ids, ap.ID)
		}
		MustEqual(t, "ListApprovals "+tt.name, ids, tt.want)
	}
}

func testListApprovalsDefaultLimit(t *testing.T, s engine.Store) {
	ctx := t.Context()
	for i := range 101 {
		mustApproval(t, s, &engine.ToolApproval{ID: fmt.Sprintf("ap-%03d", i)})
	}
	list, err := s.ListApprovals(ctx, engine.ApprovalFilter{})
	Must(t, err)
	MustEqual(t, "approvals listed by default", len(list), 100)
}

func testIdentities(t *testing.T, s engine.Store) {
	ctx := t.Context()
	ada, bob := mustUser(t, s, "ada"), mustUser(t, s, "bob")
	links := []struct {
		name string
		id   engine.Identity
		code string // "" for success
	}{
		{"slack", engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "U1", UserID: ada.ID}, ""},
		{"discord", engine.Identity{Platform: engine.PlatformDiscord, ChatUserID: "D1", UserID: ada.ID}, ""},
		{"second on a platform", engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "U0", UserID: ada.ID}, ""},
		{"same chat id on another platform", engine.Identity{Platform: engine.PlatformMattermost, ChatUserID: "U1", UserID: bob.ID}, ""},
		{"unknown console user", engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "U9", UserID: "no-such-user"}, engine.ENOTFOUND},
		{"no chat user", engine.Identity{Platform: engine.PlatformSlack, UserID: ada.ID}, engine.EINVALID},
		{"no platform", engine.Identity{ChatUserID: "U8", UserID: ada.ID}, engine.EINVALID},
		{"no console user", engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "U7"}, engine.EINVALID},
	}
	for _, tt := range links {
		t.Run("link "+tt.name, func(t *testing.T) {
			id := tt.id
			err := s.LinkIdentity(ctx, &id)
			if tt.code != "" {
				MustCode(t, err, tt.code)
				_, err := s.UserByIdentity(ctx, id.Platform, id.ChatUserID)
				MustCode(t, err, engine.ENOTFOUND)
				return
			}
			Must(t, err)
			mustStoredTime(t, "CreatedAt", id.CreatedAt)
		})
	}
	lookups := []struct {
		platform engine.Platform
		chatUser string
		want     *engine.User // nil: ENOTFOUND
	}{
		{engine.PlatformSlack, "U1", ada},
		{engine.PlatformSlack, "U0", ada},
		{engine.PlatformDiscord, "D1", ada},
		{engine.PlatformMattermost, "U1", bob},
		{engine.PlatformDiscord, "U1", nil},
		{engine.PlatformSlack, "u1", nil}, // ids are case-sensitive
		{engine.PlatformSlack, "U9", nil},
	}
	for _, tt := range lookups {
		t.Run(fmt.Sprintf("user of %s %s", tt.platform, tt.chatUser), func(t *testing.T) {
			got, err := s.UserByIdentity(ctx, tt.platform, tt.chatUser)
			if tt.want == nil {
				MustCode(t, err, engine.ENOTFOUND)
				return
			}
			Must(t, err)
			MustEqual(t, "UserByIdentity", got, tt.want)
		})
	}

	mustIdentities := func(t *testing.T, user *engine.User, want ...string) {
		t.Helper()
		list, err := s.IdentitiesOf(ctx, user.ID)
		Must(t, err)
		got := []string{}
		for _, id := range list {
			if id.UserID != user.ID {
				t.Fatalf("identity %+v listed for %s", id, user.Name)
			}
			mustStoredTime(t, "CreatedAt", id.CreatedAt)
			got = append(got, string(id.Platform)+":"+id.ChatUserID)
		}
		MustEqual(t, "IdentitiesOf("+user.Name+")", got, want)
	}
	mustIdentities(t, ada, "discord:D1", "slack:U0", "slack:U1")
	mustIdentities(t, bob, "mattermost:U1")
	list, err := s.IdentitiesOf(ctx, "no-such-user")
	Must(t, err)
	MustEqual(t, "identities of an unknown user", len(list), 0)

	// Linking a linked chat user again moves the link.
	relink := &engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "U1", UserID: bob.ID}
	Must(t, s.LinkIdentity(ctx, relink))
	got, err := s.UserByIdentity(ctx, engine.PlatformSlack, "U1")
	Must(t, err)
	MustEqual(t, "user after relinking", got, bob)
	mustIdentities(t, ada, "discord:D1", "slack:U0")
	mustIdentities(t, bob, "mattermost:U1", "slack:U1")
	list, err = s.IdentitiesOf(ctx, bob.ID)
	Must(t, err)
	MustEqual(t, "relinked identity", list[1], relink)

	// A failed relink keeps the link.
	MustCode(t, s.LinkIdentity(ctx, &engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "U1", UserID: "no-such-user"}), engine.ENOTFOUND)
	got, err = s.UserByIdentity(ctx, engine.PlatformSlack, "U1")
	Must(t, err)
	MustEqual(t, "user after a failed relink", got, bob)

	Must(t, s.UnlinkIdentity(ctx, engine.PlatformSlack, "U1"))
	_, err = s.UserByIdentity(ctx, engine.PlatformSlack, "U1")
	MustCode(t, err, engine.ENOTFOUND)
	MustCode(t, s.UnlinkIdentity(ctx, engine.PlatformSlack, "U1"), engine.ENOTFOUND)
	MustCode(t, s.UnlinkIdentity(ctx, engine.PlatformDiscord, "no-such-chat-user"), engine.ENOTFOUND)
	mustIdentities(t, bob, "mattermost:U1")
	mustIdentities(t, ada, "discord:D1", "slack:U0")
}

func testAssistantToolPolicy(t *testing.T, s engine.Store) {
	ctx := t.Context()
	set := map[string]engine.ToolMode{"files__read": engine.ToolAllow, "files__write": engine.ToolAsk, "web__fetch": engine.ToolDeny}
	other := map[string]engine.ToolMode{"files__write": engine.ToolDeny}
	tests := []struct {
		name   string
		policy map[string]engine.ToolMode
		want   map[string]engine.ToolMode // as read back: an empty policy is nil
		code   string
	}{
		{"nil", nil, nil, ""},
		{"empty", map[string]engine.ToolMode{}, nil, ""},
		{"set", set, set, ""},
		{"unknown mode", map[string]engine.ToolMode{"files__read": "sometimes"}, nil, engine.EINVALID},
		{"no tool name", map[string]engine.ToolMode{" ": engine.ToolAsk}, nil, engine.EINVALID},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &engine.Assistant{Name: fmt.Sprintf("policy-%d", i), Tools: []string{"files__read", "files__write", "web__fetch"},
				ToolPolicy: tt.policy}
			err := s.CreateAssistant(ctx, a)
			if tt.code != "" {
				MustCode(t, err, tt.code)
				// Nor can an update set it.
				b := &engine.Assistant{Name: fmt.Sprintf("policy-%d", i), ToolPolicy: other}
				Must(t, s.CreateAssistant(ctx, b))
				b.ToolPolicy = tt.policy
				MustCode(t, s.UpdateAssistant(ctx, b), tt.code)
				got, err := s.AssistantByID(ctx, b.ID)
				Must(t, err)
				MustEqual(t, "policy after a failed update", got.ToolPolicy, other)
				return
			}
			Must(t, err)
			MustEqual(t, "policy filled by CreateAssistant", a.ToolPolicy, tt.want)
			got, err := s.AssistantByID(ctx, a.ID)
			Must(t, err)
			MustEqual(t, "policy after create", got.ToolPolicy, tt.want)
			MustEqual(t, "assistant after create", got, a)

			// Update to another policy and back.
			a.ToolPolicy = other
			Must(t, s.UpdateAssistant(ctx, a))
			got, err = s.AssistantByID(ctx, a.ID)
			Must(t, err)
			MustEqual(t, "policy after update", got.ToolPolicy, other)
			a.ToolPolicy = tt.policy
			Must(t, s.UpdateAssistant(ctx, a))
			got, err = s.AssistantByID(ctx, a.ID)
			Must(t, err)
			MustEqual(t, "policy after updating back", got.ToolPolicy, tt.want)
			MustEqual(t, "assistant after updating back", got, a)
			list, err := s.ListAssistants(ctx)
			Must(t, err)
			for _, l := range list {
				if l.ID == a.ID {
					MustEqual(t, "listed policy", l.ToolPolicy, tt.want)
				}
			}
		})
	}
}
