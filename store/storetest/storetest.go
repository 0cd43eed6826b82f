// Package storetest is the conformance suite of engine.Store. Every store
// implementation (store/sqlite, store/postgres) runs it against a real
// database, so both keep exactly the semantics documented in engine/store.go.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// Run runs the conformance suite. open must return a fresh, empty, migrated
// store for each call and close it when tb ends; it is called from parallel
// subtests.
func Run(t *testing.T, open func(tb testing.TB) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store)
	}{
		{"Ping", testPing},
		{"Analytics", testAnalytics},
		{"AnalyticsSQLText", testAnalyticsSQLText},
		{"Users", testUsers},
		{"UserErrors", testUserErrors},
		{"Sessions", testSessions},
		{"APITokens", testAPITokens},
		{"Assistants", testAssistants},
		{"AssistantErrors", testAssistantErrors},
		{"DefaultAssistant", testDefaultAssistant},
		{"EnsureConversation", testEnsureConversation},
		{"EnsureConversationConcurrent", testEnsureConversationConcurrent},
		{"ConversationByThread", testConversationByThread},
		{"ListConversations", testListConversations},
		{"ListConversationsDefaultLimit", testListConversationsDefaultLimit},
		{"ConversationFilters", testConversationFilters},
		{"ConversationStats", testConversationStats},
		{"ConversationFeedback", testConversationFeedback},
		{"ToolCallsByTrace", testToolCallsByTrace},
		{"Turns", testTurns},
		{"Traces", testTraces},
		{"Feedback", testFeedback},
		{"FeedbackErrors", testFeedbackErrors},
		{"KnowledgeBases", testKnowledgeBases},
		{"Documents", testDocuments},
		{"DeleteKnowledgeBaseCascades", testDeleteKnowledgeBaseCascades},
		{"EnqueueIdempotent", testEnqueueIdempotent},
		{"ClaimOrder", testClaimOrder},
		{"InboxOwnerChecks", testInboxOwnerChecks},
		{"InboxRetry", testInboxRetry},
		{"InboxDeadLetter", testInboxDeadLetter},
		{"InboxLeaseExpiry", testInboxLeaseExpiry},
		{"InboxFutureEventBlocksThread", testInboxFutureEventBlocksThread},
		{"ConcurrentClaimersGetDistinctEvents", testConcurrentClaimers},
		{"ConcurrentEnqueueStoresEachEventOnce", testConcurrentEnqueue},
		{"ConcurrentEnqueueFailureFailsAlone", testConcurrentEnqueueFailureAlone},
		{"InboxPurge", testInboxPurge},
		{"Preferences", testPreferences},
		{"PlatformStatus", testPlatformStatus},
		{"ToolCallAudit", testToolCallAudit},
		{"ToolPins", testToolPins},
		{"ToolServers", testToolServers},
		{"ModelProviders", testModelProviders}, {"ModelProviderValidation", testModelProviderValidation},
		{"Approvals", testApprovals},
		{"DecideApproval", testDecideApproval},
		{"DecideApprovalConcurrently", testDecideApprovalConcurrently},
		{"ListApprovals", testListApprovals},
		{"ListApprovalsDefaultLimit", testListApprovalsDefaultLimit},
		{"Identities", testIdentities},
		{"Invitations", testInvitations}, {"SignIns", testSignIns},
		{"AssistantToolPolicy", testAssistantToolPolicy},
		{"ConcurrentWorkersKeepThreadOrder", testConcurrentWorkers},
		{"Outbox", testOutbox},
		{"Audit", testAudit}, {"AuditValidation", testAuditValidation}, {"ListAudit", testListAudit}, {"ListAuditDefaultLimit", testListAuditDefaultLimit},
		{"Budgets", testBudgets}, {"BudgetTokens", testBudgetTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// RunSessions runs the tests of console sessions (and of the operations
// that end them) alone, for a store whose sessions live elsewhere
// (store/redis.WithSessions).
func RunSessions(t *testing.T, open func(tb testing.TB) engine.Store) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, s engine.Store)
	}{{"Sessions", testSessions}, {"Invitations", testInvitations}, {"SignIns", testSignIns}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// MustCode fails tb unless err carries the engine error code.
func MustCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := engine.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// Must fails tb when err is not nil.
func Must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// MustEqual fails tb unless got and want are deeply equal.
func MustEqual[T any](tb testing.TB, what string, got, want T) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s:\n got  %s\n want %s", what, dump(got), dump(want))
	}
}

func dump(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = dump(rv.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return fmt.Sprintf("&%+v", rv.Elem().Interface())
	}
	return fmt.Sprintf("%+v", v)
}

// mustStoredTime fails unless t is a time as the stores return it: set, in
// UTC, with microsecond precision.
func mustStoredTime(tb testing.TB, what string, t time.Time) {
	tb.Helper()
	if t.IsZero() || t.Location() != time.UTC || !t.Equal(t.Truncate(time.Microsecond)) {
		tb.Fatalf("%s = %v: want a non-zero UTC time truncated to microseconds", what, t)
	}
}

// stored returns t as the stores keep it.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func mustMessageNames(tb testing.TB, err error, name string) {
	tb.Helper()
	if msg := engine.ErrorMessage(err); !strings.Contains(msg, name) {
		tb.Fatalf("error message %q does not name %q", msg, name)
	}
}

func testPing(t *testing.T, s engine.Store) {
	Must(t, s.Ping(t.Context()))
}

func mustUser(t *testing.T, s engine.Store, name string) *engine.User {
	t.Helper()
	u := &engine.User{Name: name, Role: engine.RoleViewer}
	Must(t, s.CreateUser(t.Context(), u))
	return u
}

func testUsers(t *testing.T, s engine.Store) {
	ctx := t.Context()
	n, err := s.CountUsers(ctx)
	Must(t, err)
	MustEqual(t, "users in an empty store", n, 0)
	list, err := s.ListUsers(ctx)
	Must(t, err)
	MustEqual(t, "users in an empty store", len(list), 0)

	alice := &engine.User{Name: "Alice", DisplayName: "Alice A.", Role: engine.RoleAdmin, PasswordHash: "hash-a"}
	Must(t, s.CreateUser(ctx, alice))
	if alice.ID == "" {
		t.Fatal("CreateUser left ID empty")
	}
	mustStoredTime(t, "CreatedAt", alice.CreatedAt)
	MustEqual(t, "UpdatedAt of a new user", alice.UpdatedAt, alice.CreatedAt)

	got, err := s.UserByID(ctx, alice.ID)
	Must(t, err)
	MustEqual(t, "UserByID", got, alice)
	for _, name := range []string{"Alice", "alice", "ALICE", " alice "} {
		got, err := s.UserByName(ctx, name)
		Must(t, err)
		MustEqual(t, "UserByName("+name+")", got, alice)
	}

	carol := &engine.User{ID: "user-carol", Name: "Carol", Role: engine.RoleEditor, Disabled: true}
	Must(t, s.CreateUser(ctx, carol))
	MustEqual(t, "preset ID", carol.ID, "user-carol")
	bob := mustUser(t, s, "bob")

	list, err = s.ListUsers(ctx)
	Must(t, err)
	MustEqual(t, "ListUsers (ordered by name, ignoring case)", list, []*engine.User{alice, bob, carol})
	n, err = s.CountUsers(ctx)
	Must(t, err)
	MustEqual(t, "CountUsers", n, 3)

	bob.Name, bob.DisplayName, bob.Role, bob.Disabled, bob.PasswordHash = "Robert", "Bob R.", engine.RoleEditor, true, "hash-b"
	createdAt := bob.CreatedAt
	bob.CreatedAt = time.Time{} // UpdateUser fills it in
	Must(t, s.UpdateUser(ctx, bob))
	MustEqual(t, "CreatedAt after update", bob.CreatedAt, createdAt)
	mustStoredTime(t, "UpdatedAt", bob.UpdatedAt)
	if bob.UpdatedAt.Before(bob.CreatedAt) {
		t.Fatalf("UpdatedAt %v before CreatedAt %v", bob.UpdatedAt, bob.CreatedAt)
	}
	got, err = s.UserByName(ctx, "robert")
	Must(t, err)
	MustEqual(t, "renamed user", got, bob)
	_, err = s.UserByName(ctx, "bob")
	MustCode(t, err, engine.ENOTFOUND)
}

func testUserErrors(t *testing.T, s engine.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "Alice")
	bob := mustUser(t, s, "Bob")

	creates := []struct {
		name string
		user engine.User
		code string
	}{
		{"same name", engine.User{Name: "Alice", Role: engine.RoleViewer}, engine.ECONFLICT},
		{"same name in another case", engine.User{Name: "aLICE", Role: engine.RoleViewer}, engine.ECONFLICT},
		{"same id", engine.User{ID: alice.ID, Name: "Zed", Role: engine.RoleViewer}, engine.ECONFLICT},
		{"empty name", engine.User{Name: " ", Role: engine.RoleViewer}, engine.EINVALID},
		{"unknown role", engine.User{Name: "Eve", Role: "root"}, engine.EINVALID},
	}
	for _, tt := range creates {
		t.Run("create "+tt.name, func(t *testing.T) {
			u := tt.user
			err := s.CreateUser(ctx, &u)
			MustCode(t, err, tt.code)
			if tt.code == engine.ECONFLICT && tt.user.ID == "" {
				mustMessageNames(t, err, tt.user.Name)
			}
		})
	}

	updates := []struct {
		name string
		edit func(u *engine.User)
		code string
	}{
		{"to a taken name", func(u *engine.User) { u.Name = "ALICE" }, engine.ECONFLICT},
		{"missing user", func(u *engine.User) { u.ID = "no-such-user" }, engine.ENOTFOUND},
		{"unknown role", func(u *engine.User) { u.Role = "root" }, engine.EINVALID},
	}
	for _, tt := range updates {
		t.Run("update "+tt.name, func(t *testing.T) {
			u := *bob
			tt.edit(&u)
			MustCode(t, s.UpdateUser(ctx, &u), tt.code)
			got, err := s.UserByID(ctx, bob.ID)
			Must(t, err)
			MustEqual(t, "user after a failed update", got, bob)
		})
	}

	_, err := s.UserByID(ctx, "no-such-user")
	MustCode(t, err, engine.ENOTFOUND)
	_, err = s.UserByName(ctx, "nobody")
	MustCode(t, err, engine.ENOTFOUND)
	n, err := s.CountUsers(ctx)
	Must(t, err)
	MustEqual(t, "CountUsers", n, 2)
}

func testSessions(t *testing.T, s engine.Store) {
	ctx := t.Context()
	dana := mustUser(t, s, "dana")
	erin := mustUser(t, s, "erin")

	sess := &engine.Session{UserID: dana.ID, TokenHash: "hash-1", ExpiresAt: time.Now().Add(time.Hour)}
	Must(t, s.CreateSession(ctx, sess))
	if sess.ID == "" {
		t.Fatal("CreateSession left ID empty")
	}
	mustStoredTime(t, "CreatedAt", sess.CreatedAt)
	mustStoredTime(t, "ExpiresAt", sess.ExpiresAt)
	got, err := s.SessionByTokenHash(ctx, "hash-1")
	Must(t, err)
	MustEqual(t, "SessionByTokenHash", got, sess)

	expired := &engine.Session{UserID: dana.ID, TokenHash: "hash-expired", ExpiresAt: time.Now().Add(-time.Second)}
	Must(t, s.CreateSession(ctx, expired))

	errs := []struct {
		name string
		err  func() error
		code string
	}{
		{"expired session", func() error { _, err := s.SessionByTokenHash(ctx, "hash-expired"); return err }, engine.ENOTFOUND},
		{"unknown hash", func() error { _, err := s.SessionByTokenHash(ctx, "hash-nope"); return err }, engine.ENOTFOUND},
		{"unknown user", func() error {
			return s.CreateSession(ctx, &engine.Session{UserID: "nobody", TokenHash: "hash-2", ExpiresAt: time.Now().Add(time.Hour)})
		}, engine.ENOTFOUND},
		{"duplicate token hash", func() error {
			return s.CreateSession(ctx, &engine.Session{UserID: erin.ID, TokenHash: "hash-1", ExpiresAt: time.Now().Add(time.Hour)})
		}, engine.ECONFLICT},
		{"no expiry", func() error { return s.CreateSession(ctx, &engine.Session{UserID: erin.ID, TokenHash: "hash-3"}) }, engine.EINVALID},
		{"delete missing", func() error { return s.DeleteSession(ctx, "no-such-session") }, engine.ENOTFOUND},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { MustCode(t, tt.err(), tt.code) })
	}

	Must(t, s.DeleteSession(ctx, sess.ID))
	_, err = s.SessionByTokenHash(ctx, "hash-1")
	MustCode(t, err, engine.ENOTFOUND)
	MustCode(t, s.DeleteSession(ctx, sess.ID), engine.ENOTFOUND)

	for i, u := range []*engine.User{dana, dana, erin} {
		Must(t, s.CreateSession(ctx, &engine.Session{UserID: u.ID, TokenHash: fmt.Sprintf("hash-u%d", i), ExpiresAt: time.Now().Add(time.Hour)}))
	}
	Must(t, s.DeleteUserSessions(ctx, dana.ID))
	for _, hash := range []string{"hash-u0", "hash-u1"} {
		_, err := s.SessionByTokenHash(ctx, hash)
		MustCode(t, err, engine.ENOTFOUND)
	}
	got, err = s.SessionByTokenHash(ctx, "hash-u2")
	Must(t, err)
	MustEqual(t, "other user's session", got.UserID, erin.ID)
	Must(t, s.DeleteUserSessions(ctx, dana.ID)) // none left: not an error

	// Idle sessions: touched ones stay, idle and expired ones are purged.
	fresh := &engine.Session{UserID: erin.ID, TokenHash: "hash-fresh", ExpiresAt: time.Now().Add(time.Hour)}
	idle := &engine.Session{UserID: erin.ID, TokenHash: "hash-idle", ExpiresAt: time.Now().Add(time.Hour)}
	Must(t, s.CreateSession(ctx, fresh))
	Must(t, s.CreateSession(ctx, idle))
	MustEqual(t, "LastSeenAt of a new session", fresh.LastSeenAt, fresh.CreatedAt)
	later := time.Now().Add(10 * time.Minute)
	Must(t, s.TouchSession(ctx, fresh.ID, later))
	got, err = s.SessionByTokenHash(ctx, "hash-fresh")
	Must(t, err)
	MustEqual(t, "LastSeenAt after TouchSession", got.LastSeenAt, engine.StoredTime(later))
	MustCode(t, s.TouchSession(ctx, "no-such-session", later), engine.ENOTFOUND)
	Must(t, s.CreateSession(ctx, &engine.Session{UserID: erin.ID, TokenHash: "hash-erin-expired", ExpiresAt: time.Now().Add(-time.Second)}))
	n, err := s.PurgeSessions(ctx, time.Now().Add(-time.Hour))
	Must(t, err)
	MustEqual(t, "expired sessions purged", n, 1)
	n, err = s.PurgeSessions(ctx, time.Now().Add(5*time.Minute))
	Must(t, err)
	MustEqual(t, "idle sessions purged (hash-idle and hash-u2)", n, 2)
	_, err = s.SessionByTokenHash(ctx, "hash-idle")
	MustCode(t, err, engine.ENOTFOUND)
	_, err = s.SessionByTokenHash(ctx, "hash-fresh")
	Must(t, err)
}

func testAPITokens(t *testing.T, s engine.Store) {
	ctx := t.Context()
	dana := mustUser(t, s, "dana")
	erin := mustUser(t, s, "erin")

	t1 := &engine.APIToken{UserID: dana.ID, Name: "ci", TokenHash: "tok-1"}
	t2 := &engine.APIToken{UserID: dana.ID, Name: "laptop", TokenHash: "tok-2"}
	t3 := &engine.APIToken{UserID: erin.ID, Name: "ci", TokenHash: "tok-3"}
	for _, tok := range []*engine.APIToken{t1, t2, t3} {
		Must(t, s.CreateAPIToken(ctx, tok))
		if tok.ID == "" {
			t.Fatal("CreateAPIToken left ID empty")
		}
		mustStoredTime(t, "CreatedAt", tok.CreatedAt)
		if !tok.LastUsedAt.IsZero() {
			t.Fatalf("LastUsedAt of a new token = %v", tok.LastUsedAt)
		}
	}
	got, err := s.APITokenByHash(ctx, "tok-2")
	Must(t, err)
	MustEqual(t, "APITokenByHash", got, t2)

	list, err := s.ListAPITokens(ctx, dana.ID)
	Must(t, err)
	MustEqual(t, "ListAPITokens(dana)", list, []*engine.APIToken{t1, t2})
	list, err = s.ListAPITokens(ctx, "")
	Must(t, err)
	MustEqual(t, "ListAPITokens(every user)", list, []*engine.APIToken{t1, t2, t3})
	list, err = s.ListAPITokens(ctx, "nobody")
	Must(t, err)
	MustEqual(t, "ListAPITokens(nobody)", len(list), 0)

	used := time.Now().Add(-time.Minute)
	Must(t, s.TouchAPIToken(ctx, t1.ID, used))
	got, err = s.APITokenByHash(ctx, "tok-1")
	Must(t, err)
	MustEqual(t, "LastUsedAt", got.LastUsedAt, stored(used))

	errs := []struct {
		name string
		err  func() error
		code string
	}{
		{"unknown user", func() error {
			return s.CreateAPIToken(ctx, &engine.APIToken{UserID: "nobody", Name: "x", TokenHash: "tok-4"})
		}, engine.ENOTFOUND},
		{"duplicate hash", func() error {
			return s.CreateAPIToken(ctx, &engine.APIToken{UserID: erin.ID, Name: "x", TokenHash: "tok-1"})
		}, engine.ECONFLICT},
		{"no hash", func() error { return s.CreateAPIToken(ctx, &engine.APIToken{UserID: erin.ID, Name: "x"}) }, engine.EINVALID},
		{"unknown hash", func() error { _, err := s.APITokenByHash(ctx, "tok-nope"); return err }, engine.ENOTFOUND},
		{"touch missing", func() error { return s.TouchAPIToken(ctx, "no-such-token", time.Now()) }, engine.ENOTFOUND},
		{"delete missing", func() error { return s.DeleteAPIToken(ctx, "no-such-token") }, engine.ENOTFOUND},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { MustCode(t, tt.err(), tt.code) })
	}

	Must(t, s.DeleteAPIToken(ctx, t1.ID))
	_, err = s.APITokenByHash(ctx, "tok-1")
	MustCode(t, err, engine.ENOTFOUND)
	list, err = s.ListAPITokens(ctx, dana.ID)
	Must(t, err)
	MustEqual(t, "ListAPITokens after delete", list, []*engine.APIToken{t2})
}

func testAssistants(t *testing.T, s engine.Store) {
	ctx := t.Context()
	helper := &engine.Assistant{
		Name:            "Helper",
		Description:     "Answers questions about the docs.",
		SystemPrompt:    "You are helpful.",
		Model:           "gpt-4o-mini",
		Temperature:     0.3,
		MaxOutputTokens: 800,
		KnowledgeBases:  []string{"docs", "faq"},
		Tools:           []string{"search", "time"},
		ToolPolicy:      map[string]engine.ToolMode{"search": engine.ToolAsk},
		Bindings: []engine.Binding{
			{Platform: engine.PlatformSlack, ChannelID: "C1", Trigger: engine.TriggerMention},
			{Platform: engine.PlatformMattermost, ChannelID: engine.ChannelAnyDM},
		},
		Retrieval: engine.RetrievalSettings{Limit: 7, MinScore: 0.25, Mode: engine.SearchHybrid, Fusion: engine.FusionAlpha,
			Alpha: ptr(0.3), RRFK: 40, Rerank: true},
		IsDefault: true,
	}
	Must(t, s.CreateAssistant(ctx, helper))
	if helper.ID == "" {
		t.Fatal("CreateAssistant left ID empty")
	}
	mustStoredTime(t, "CreatedAt", helper.CreatedAt)
	got, err := s.AssistantByID(ctx, helper.ID)
	Must(t, err)
	MustEqual(t, "AssistantByID", got, helper)
	for _, name := range []string{"Helper", "helper", "HELPER"} {
		got, err := s.AssistantByName(ctx, name)
		Must(t, err)
		MustEqual(t, "AssistantByName("+name+")", got, helper)
	}

	// Nil slices are stored as empty ones.
	bare := &engine.Assistant{Name: "bare"}
	Must(t, s.CreateAssistant(ctx, bare))
	got, err = s.AssistantByID(ctx, bare.ID)
	Must(t, err)
	MustEqual(t, "assistant without lists", got, bare)
	if got.KnowledgeBases == nil || got.Tools == nil || got.Bindings == nil {
		t.Fatalf("lists of a bare assistant read back nil: %+v", got)
	}

	zed := &engine.Assistant{Name: "Zed"}
	Must(t, s.CreateAssistant(ctx, zed))
	list, err := s.ListAssistants(ctx)
	Must(t, err)
	MustEqual(t, "ListAssistants (ordered by name)", list, []*engine.Assistant{bare, helper, zed})

	helper.Description, helper.Tools, helper.Bindings = "Changed.", []string{}, nil
	helper.Retrieval = engine.RetrievalSettings{}
	createdAt := helper.CreatedAt
	helper.CreatedAt = time.Time{}
	Must(t, s.UpdateAssistant(ctx, helper))
	MustEqual(t, "CreatedAt after update", helper.CreatedAt, createdAt)
	got, err = s.AssistantByID(ctx, helper.ID)
	Must(t, err)
	MustEqual(t, "updated assistant", got, helper)

	Must(t, s.DeleteAssistant(ctx, zed.ID))
	_, err = s.AssistantByID(ctx, zed.ID)
	MustCode(t, err, engine.ENOTFOUND)
	list, err = s.ListAssistants(ctx)
	Must(t, err)
	MustEqual(t, "ListAssistants after delete", list, []*engine.Assistant{bare, helper})
}

func testAssistantErrors(t *testing.T, s engine.Store) {
	ctx := t.Context()
	helper := &engine.Assistant{Name: "Helper"}
	Must(t, s.CreateAssistant(ctx, helper))
	other := &engine.Assistant{Name: "Other"}
	Must(t, s.CreateAssistant(ctx, other))

	creates := []struct {
		name      string
		assistant engine.Assistant
		code      string
	}{
		{"same name", engine.Assistant{Name: "Helper"}, engine.ECONFLICT},
		{"same name in another case", engine.Assistant{Name: "hELPER"}, engine.ECONFLICT},
		{"same id", engine.Assistant{ID: helper.ID, Name: "Third"}, engine.ECONFLICT},
		{"empty name", engine.Assistant{Name: ""}, engine.EINVALID},
		{"temperature out of range", engine.Assistant{Name: "Hot", Temperature: 3}, engine.EINVALID},
	}
	for _, tt := range creates {
		t.Run("create "+tt.name, func(t *testing.T) {
			a := tt.assistant
			err := s.CreateAssistant(ctx, &a)
			MustCode(t, err, tt.code)
			if tt.code == engine.ECONFLICT && tt.assistant.ID == "" {
				mustMessageNames(t, err, tt.assistant.Name)
			}
		})
	}
	updates := []struct {
		name string
		edit func(a *engine.Assistant)
		code string
	}{
		{"to a taken name", func(a *engine.Assistant) { a.Name = "HELPER" }, engine.ECONFLICT},
		{"missing assistant", func(a *engine.Assistant) { a.ID = "no-such-assistant" }, engine.ENOTFOUND},
		{"invalid binding", func(a *engine.Assistant) { a.Bindings = []engine.Binding{{Platform: engine.PlatformSlack}} }, engine.EINVALID},
	}
	for _, tt := range updates {
		t.Run("update "+tt.name, func(t *testing.T) {
			a := *other
			tt.edit(&a)
			MustCode(t, s.UpdateAssistant(ctx, &a), tt.code)
			got, err := s.AssistantByID(ctx, other.ID)
			Must(t, err)
			MustEqual(t, "assistant after a failed update", got, other)
		})
	}
	_, err := s.AssistantByID(ctx, "no-such-assistant")
	MustCode(t, err, engine.ENOTFOUND)
	_, err = s.AssistantByName(ctx, "nobody")
	MustCode(t, err, engine.ENOTFOUND)
	MustCode(t, s.DeleteAssistant(ctx, "no-such-assistant"), engine.ENOTFOUND)
}

func testDefaultAssistant(t *testing.T, s engine.Store) {
	ctx := t.Context()
	byName := map[string]*engine.Assistant{}
	for _, name := range []string{"a", "b", "c"} {
		byName[name] = &engine.Assistant{Name: name}
	}
	defaults := func() []string {
		t.Helper()
		list, err := s.ListAssistants(ctx)
		Must(t, err)
		var names []string
		for _, a := range list {
			if a.IsDefault {
				names = append(names, a.Name)
			}
		}
		return names
	}
	steps := []struct {
		name   string
		run    func() error
		wanted []string
	}{
		{"create a as default", func() error { byName["a"].IsDefault = true; return s.CreateAssistant(ctx, byName["a"]) }, []string{"a"}},
		{"create b as default", func() error { byName["b"].IsDefault = true; return s.CreateAssistant(ctx, byName["b"]) }, []string{"b"}},
		{"create c not default", func() error { return s.CreateAssistant(ctx, byName["c"]) }, []string{"b"}},
		{"update c to default", func() error { byName["c"].IsDefault = true; return s.UpdateAssistant(ctx, byName["c"]) }, []string{"c"}},
		{"update the default again", func() error { byName["c"].Description = "x"; return s.UpdateAssistant(ctx, byName["c"]) }, []string{"c"}},
		{"update a stale copy of b", func() error { byName["b"].IsDefault = false; return s.UpdateAssistant(ctx, byName["b"]) }, []string{"c"}},
		{"unset the default", func() error { byName["c"].IsDefault = false; return s.UpdateAssistant(ctx, byName["c"]) }, nil},
		{"update a to default", func() error { byName["a"].IsDefault = true; return s.UpdateAssistant(ctx, byName["a"]) }, []string{"a"}},
	}
	for _, st := range steps {
		Must(t, st.run())
		MustEqual(t, "default assistants after "+st.name, defaults(), st.wanted)
	}

	// Concurrent writers that each set their assistant as default leave one.
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		a := *byName[name]
		a.IsDefault = true
		wg.Go(func() {
			if err := s.UpdateAssistant(ctx, &a); err != nil {
				t.Errorf("update %s: %v", a.Name, err)
			}
		})
	}
	wg.Wait()
	if got := defaults(); len(got) != 1 {
		t.Fatalf("default assistants after concurrent updates = %v, want exactly one", got)
	}
}

func testEnsureConversation(t *testing.T, s engine.Store) {
	ctx := t.Context()
	first := &engine.Conversation{AssistantID: "asst-1", Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T1",
		UserID: "U1", Title: "First question"}
	Must(t, s.EnsureConversation(ctx, first))
	if first.ID == "" {
		t.Fatal("EnsureConversation left ID empty")
	}
	mustStoredTime(t, "CreatedAt", first.CreatedAt)
	got, err := s.ConversationByID(ctx, first.ID)
	Must(t, err)
	MustEqual(t, "ConversationByID", got, first)

	again := &engine.Conversation{AssistantID: "asst-2", Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T1",
		UserID: "U2", Title: "Follow-up"}
	Must(t, s.EnsureConversation(ctx, again))
	MustEqual(t, "EnsureConversation of an existing thread", again, first)

	others := []struct {
		name string
		conv engine.Conversation
	}{
		{"another thread", engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T2"}},
		{"another channel", engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "C2", ThreadID: "T1"}},
		{"another platform", engine.Conversation{Platform: engine.PlatformDiscord, ChannelID: "C1", ThreadID: "T1"}},
		{"preset id", engine.Conversation{ID: "conv-preset", Platform: engine.PlatformConsole, ChannelID: "u1", ThreadID: "x"}},
	}
	ids := map[string]bool{first.ID: true}
	for _, tt := range others {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.conv
			Must(t, s.EnsureConversation(ctx, &c))
			if ids[c.ID] {
				t.Fatalf("conversation of %s reused id %s", tt.name, c.ID)
			}
			if tt.conv.ID != "" {
				MustEqual(t, "preset id", c.ID, tt.conv.ID)
			}
			ids[c.ID] = true
		})
	}

	dup := &engine.Conversation{ID: first.ID, Platform: engine.PlatformSlack, ChannelID: "C9", ThreadID: "T9"}
	MustCode(t, s.EnsureConversation(ctx, dup), engine.ECONFLICT)
	MustCode(t, s.EnsureConversation(ctx, &engine.Conversation{ChannelID: "C1"}), engine.EINVALID)
	_, err = s.ConversationByID(ctx, "no-such-conversation")
	MustCode(t, err, engine.ENOTFOUND)
}

func testEnsureConversationConcurrent(t *testing.T, s engine.Store) {
	ctx := t.Context()
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := &engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T1", Title: fmt.Sprint(i)}
			if err := s.EnsureConversation(ctx, c); err != nil {
				t.Errorf("ensure %d: %v", i, err)
			}
			ids[i] = c.ID
		})
	}
	wg.Wait()
	for i := range ids {
		if ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("concurrent EnsureConversation of one thread returned ids %v", ids)
		}
	}
	list, err := s.ListConversations(ctx, engine.ConversationFilter{})
	Must(t, err)
	MustEqual(t, "conversations", len(list), 1)
}

func testConversationByThread(t *testing.T, s engine.Store) {
	ctx := t.Context()
	fixtures := []*engine.Conversation{
		{AssistantID: "asst-1", Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "1700000000.000100", UserID: "U1", Title: "First"},
		{AssistantID: "asst-1", Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "1700000000.000200", UserID: "U2"},
		{AssistantID: "asst-2", Platform: engine.PlatformDiscord, ChannelID: "C1", ThreadID: "1700000000.000100"},
		{Platform: engine.PlatformConsole, ChannelID: "user-1", ThreadID: ""}, // an empty thread id is a thread too
	}
	for _, c := range fixtures {
		Must(t, s.EnsureConversation(ctx, c))
	}
	// A turn bumps UpdatedAt: the lookup returns the record as stored now.
	Must(t, s.AddTurn(ctx, &engine.Turn{ConversationID: fixtures[0].ID, Role: engine.TurnUser, Content: "hello"}))
	bumped, err := s.ConversationByID(ctx, fixtures[0].ID)
	Must(t, err)
	fixtures[0] = bumped

	tests := []struct {
		name     string
		platform engine.Platform
		channel  string
		thread   string
		want     *engine.Conversation // nil: ENOTFOUND
	}{
		{"thread", engine.PlatformSlack, "C1", "1700000000.000100", fixtures[0]},
		{"other thread of the channel", engine.PlatformSlack, "C1", "1700000000.000200", fixtures[1]},
		{"same ids on another platform", engine.PlatformDiscord, "C1", "1700000000.000100", fixtures[2]},
		{"empty thread id", engine.PlatformConsole, "user-1", "", fixtures[3]},
		{"unknown thread", engine.PlatformSlack, "C1", "1700000000.000300", nil},
		{"thread of another channel", engine.PlatformSlack, "C2", "1700000000.000100", nil},
		{"thread on a platform without it", engine.PlatformMattermost, "C1", "1700000000.000100", nil},
		{"channel id in another case", engine.PlatformSlack, "c1", "1700000000.000100", nil},
		{"empty thread id of a channel with threads", engine.PlatformSlack, "C1", "", nil},
		{"nothing", "", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ConversationByThread(ctx, tt.platform, tt.channel, tt.thread)
			if tt.want == nil {
				MustCode(t, err, engine.ENOTFOUND)
				if got != nil {
					t.Fatalf("ConversationByThread of a missing thread returned %+v", got)
				}
				return
			}
			Must(t, err)
			MustEqual(t, "ConversationByThread", got, tt.want)
		})
	}

	// Looking up a missing thread creates nothing.
	list, err := s.ListConversations(ctx, engine.ConversationFilter{})
	Must(t, err)
	MustEqual(t, "conversations after the lookups", len(list), len(fixtures))
}

func testListConversations(t *testing.T, s engine.Store) {
	ctx := t.Context()
	fixtures := []engine.Conversation{
		{AssistantID: "A", Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T1", UserID: "U1"},
		{AssistantID: "B", Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T2", UserID: "U2"},
		{AssistantID: "A", Platform: engine.PlatformSlack, ChannelID: "C2", ThreadID: "T1", UserID: "U1"},
		{AssistantID: "A", Platform: engine.PlatformDiscord, ChannelID: "C1", ThreadID: "T1", UserID: "U3"},
		{AssistantID: "B", Platform: engine.PlatformMattermost, ChannelID: "D1", ThreadID: "T1", UserID: "U1"},
	}
	for i := range fixtures {
		Must(t, s.EnsureConversation(ctx, &fixtures[i]))
	}
	// A new turn makes the first conversation the most recently updated.
	Must(t, s.AddTurn(ctx, &engine.Turn{ConversationID: fixtures[0].ID, Role: engine.TurnUser, Content: "hello"}))
	all := make([]*engine.Conversation, len(fixtures))
	for i := range fixtures {
		c, err := s.ConversationByID(ctx, fixtures[i].ID)
		Must(t, err)
		all[i] = c
	}
	if !all[0].UpdatedAt.After(all[0].CreatedAt) {
		t.Fatalf("AddTurn did not bump UpdatedAt: %+v", all[0])
	}
	sorted := slices.Clone(all)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].UpdatedAt.Equal(sorted[j].UpdatedAt) {
			return sorted[i].UpdatedAt.After(sorted[j].UpdatedAt)
		}
		return sorted[i].ID > sorted[j].ID
	})
	MustEqual(t, "newest conversation", sorted[0].ID, all[0].ID)
	mid := all[2].UpdatedAt

	tests := []struct {
		name   string
		filter engine.ConversationFilter
		match  func(c *engine.Conversation) bool
		offset int
		limit  int
	}{
		{"everything", engine.ConversationFilter{}, nil, 0, 0},
		{"platform", engine.ConversationFilter{Platform: engine.PlatformSlack}, func(c *engine.Conversation) bool { return c.Platform == engine.PlatformSlack }, 0, 0},
		{"assistant", engine.ConversationFilter{AssistantID: "A"}, func(c *engine.Conversation) bool { return c.AssistantID == "A" }, 0, 0},
		{"user", engine.ConversationFilter{UserID: "U1"}, func(c *engine.Conversation) bool { return c.UserID == "U1" }, 0, 0},
		{"channel", engine.ConversationFilter{ChannelID: "C1"}, func(c *engine.Conversation) bool { return c.ChannelID == "C1" }, 0, 0},
		{"since", engine.ConversationFilter{Since: mid}, func(c *engine.Conversation) bool { return !c.UpdatedAt.Before(mid) }, 0, 0},
		{"until", engine.ConversationFilter{Until: mid}, func(c *engine.Conversation) bool { return c.UpdatedAt.Before(mid) }, 0, 0},
		{"every field", engine.ConversationFilter{Platform: engine.PlatformSlack, AssistantID: "A", UserID: "U1", ChannelID: "C2",
			Since: all[2].UpdatedAt, Until: all[2].UpdatedAt.Add(time.Microsecond)}, func(c *engine.Conversation) bool { return c.ID == all[2].ID }, 0, 0},
		{"no match", engine.ConversationFilter{Platform: engine.PlatformSlack, UserID: "U3"}, func(*engine.Conversation) bool { return false }, 0, 0},
		{"limit", engine.ConversationFilter{Limit: 2}, nil, 0, 2},
		{"limit and offset", engine.ConversationFilter{Limit: 2, Offset: 2}, nil, 2, 2},
		{"offset past the end", engine.ConversationFilter{Offset: 10}, nil, 10, 0},
		{"filter and limit", engine.ConversationFilter{AssistantID: "A", Limit: 1, Offset: 1}, func(c *engine.Conversation) bool { return c.AssistantID == "A" }, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := []*engine.Conversation{}
			for _, c := range sorted {
				if tt.match == nil || tt.match(c) {
					want = append(want, c)
				}
			}
			want = want[min(tt.offset, len(want)):]
			if tt.limit > 0 {
				want = want[:min(tt.limit, len(want))]
			}
			got, err := s.ListConversations(ctx, tt.filter)
			Must(t, err)
			MustEqual(t, "ListConversations", got, want)
		})
	}
}

func testListConversationsDefaultLimit(t *testing.T, s engine.Store) {
	ctx := t.Context()
	for i := range 52 {
		Must(t, s.EnsureConversation(ctx, &engine.Conversation{Platform: engine.PlatformConsole, ChannelID: "u", ThreadID: fmt.Sprint(i)}))
	}
	got, err := s.ListConversations(ctx, engine.ConversationFilter{})
	Must(t, err)
	MustEqual(t, "conversations without a limit", len(got), 50)
	got, err = s.ListConversations(ctx, engine.ConversationFilter{Limit: 100})
	Must(t, err)
	MustEqual(t, "conversations with limit 100", len(got), 52)
}

func testTurns(t *testing.T, s engine.Store) {
	ctx := t.Context()
	conv := &engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T1"}
	Must(t, s.EnsureConversation(ctx, conv))

	var turns []*engine.Turn
	for i := range 5 {
		turn := &engine.Turn{ConversationID: conv.ID, Role: engine.TurnUser, UserID: "U1", UserName: "dana",
			Content: fmt.Sprintf("question %d", i), EventID: fmt.Sprintf("Ev%d", i), TraceID: fmt.Sprintf("tr%d", i)}
		if i%2 == 1 {
			turn.Role, turn.UserID, turn.UserName, turn.Outcome = engine.TurnAssistant, "", "", engine.OutcomeAnswered
			turn.Content = fmt.Sprintf("answer %d [1]", i)
			turn.Citations = []engine.Citation{{Index: 1, PassageID: "p1", KnowledgeBase: "docs", Document: "guide.md",
				Title: "Guide", Section: "Intro › Setup", Snippet: "Run «make»."}}
		}
		Must(t, s.AddTurn(ctx, turn))
		if turn.ID == "" {
			t.Fatal("AddTurn left ID empty")
		}
		mustStoredTime(t, "CreatedAt", turn.CreatedAt)
		turns = append(turns, turn)
	}
	tests := []struct {
		limit int
		want  []*engine.Turn
	}{
		{0, turns},
		{-1, turns},
		{3, turns[2:]},
		{1, turns[4:]},
		{5, turns},
		{50, turns},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
			got, err := s.Turns(ctx, conv.ID, tt.limit)
			Must(t, err)
			MustEqual(t, "Turns", got, tt.want)
		})
	}

	// Turns with one timestamp keep the order they were added in.
	tie := &engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T2"}
	Must(t, s.EnsureConversation(ctx, tie))
	at := time.Now().Add(-time.Hour)
	var tied []*engine.Turn
	for _, content := range []string{"z", "a", "m"} {
		turn := &engine.Turn{ConversationID: tie.ID, Role: engine.TurnUser, Content: content, CreatedAt: at}
		Must(t, s.AddTurn(ctx, turn))
		MustEqual(t, "preset CreatedAt", turn.CreatedAt, stored(at))
		tied = append(tied, turn)
	}
	got, err := s.Turns(ctx, tie.ID, 2)
	Must(t, err)
	MustEqual(t, "turns with one timestamp", got, tied[1:])

	after, err := s.ConversationByID(ctx, conv.ID)
	Must(t, err)
	if after.UpdatedAt.Before(turns[4].CreatedAt) || !after.UpdatedAt.After(conv.CreatedAt) {
		t.Fatalf("conversation UpdatedAt %v not bumped by the turns (created %v, last turn %v)", after.UpdatedAt, conv.CreatedAt, turns[4].CreatedAt)
	}

	MustCode(t, s.AddTurn(ctx, &engine.Turn{ConversationID: "no-such-conversation", Role: engine.TurnUser, Content: "x"}), engine.ENOTFOUND)
	MustCode(t, s.AddTurn(ctx, &engine.Turn{ConversationID: conv.ID, Content: "no role"}), engine.EINVALID)
	none, err := s.Turns(ctx, "no-such-conversation", 10)
	Must(t, err)
	MustEqual(t, "turns of an unknown conversation", len(none), 0)
}

// traceWant returns the trace as a store returns it: times in UTC with
// microsecond precision.
func traceWant(tr *engine.Trace) *engine.Trace {
	w := &engine.Trace{
		ID: tr.ID, EventID: tr.EventID, ConversationID: tr.ConversationID, AssistantID: tr.AssistantID,
		AssistantName: tr.AssistantName, Platform: tr.Platform, ChannelID: tr.ChannelID, UserID: tr.UserID,
		Model: tr.Model, TokensIn: tr.TokensIn, TokensOut: tr.TokensOut, Passages: tr.Passages, Outcome: tr.Outcome,
		Error: tr.Error, StartedAt: stored(tr.StartedAt), Duration: tr.Duration, Retrieval: tr.Retrieval,
	}
	if tr.Steps != nil {
		w.Steps = slices.Clone(tr.Steps)
		for i := range w.Steps {
			if !w.Steps[i].StartedAt.IsZero() {
				w.Steps[i].StartedAt = stored(w.Steps[i].StartedAt)
			}
		}
	}
	return w
}

func testTraces(t *testing.T, s engine.Store) {
	ctx := t.Context()
	start := time.Now()
	tr := &engine.Trace{
		EventID: "Ev1", ConversationID: "conv-1", AssistantID: "asst-1", AssistantName: "Helper",
		Platform: engine.PlatformSlack, ChannelID: "C1", UserID: "U1", Model: "gpt-4o-mini", TokensIn: 120, TokensOut: 45,
		Passages: []engine.PassageRef{{ID: "p1", KnowledgeBase: "docs", Document: "guide.md", Title: "Guide", Score: 0.8731}},
		Outcome:  engine.OutcomeAnswered, StartedAt: start, Duration: 1500 * time.Millisecond,
		Retrieval: &engine.AppliedSettings{Backend: "embedded", Mode: engine.SearchHybrid, Fusion: engine.FusionRRF, RRFK: 60,
			Limit: 5, MinScore: 0.1, Notes: []string{"reranking skipped"}},
	}
	tr.AddStep(engine.TraceStep{Name: engine.StepReceived, StartedAt: start, Duration: 3 * time.Millisecond})
	tr.AddStep(engine.TraceStep{Name: engine.StepModel, StartedAt: start.Add(time.Second), Duration: time.Second,
		Detail: "120 tokens in", Error: "stream stalled"})
	Must(t, s.SaveTrace(ctx, tr))
	if tr.ID == "" {
		t.Fatal("SaveTrace left ID empty")
	}
	got, err := s.TraceByID(ctx, tr.ID)
	Must(t, err)
	MustEqual(t, "TraceByID", got, traceWant(tr))

	// Saving again replaces the trace.
	tr.Outcome, tr.Error, tr.TokensOut = engine.OutcomeFailed, "model unavailable", 0
	tr.AddStep(engine.TraceStep{Name: engine.StepPosted, StartedAt: start.Add(2 * time.Second)})
	Must(t, s.SaveTrace(ctx, tr))
	got, err = s.TraceByID(ctx, tr.ID)
	Must(t, err)
	MustEqual(t, "replaced trace", got, traceWant(tr))

	// A trace without passages or steps reads back without them.
	bare := &engine.Trace{ID: "trace-bare", ConversationID: "conv-2", Platform: engine.PlatformConsole, Outcome: engine.OutcomeRejected}
	Must(t, s.SaveTrace(ctx, bare))
	mustStoredTime(t, "StartedAt", bare.StartedAt)
	got, err = s.TraceByID(ctx, "trace-bare")
	Must(t, err)
	MustEqual(t, "bare trace", got, traceWant(bare))

	var want []*engine.Trace
	for _, offset := range []time.Duration{2 * time.Second, 0, time.Second} {
		x := &engine.Trace{ConversationID: "conv-3", Platform: engine.PlatformSlack, StartedAt: start.Add(offset), Passages: []engine.PassageRef{}}
		Must(t, s.SaveTrace(ctx, x))
		want = append(want, traceWant(x))
	}
	want = []*engine.Trace{want[1], want[2], want[0]}
	list, err := s.ListTraces(ctx, "conv-3")
	Must(t, err)
	MustEqual(t, "ListTraces (oldest first)", list, want)
	list, err = s.ListTraces(ctx, "conv-1")
	Must(t, err)
	MustEqual(t, "ListTraces after replace", len(list), 1)
	list, err = s.ListTraces(ctx, "no-such-conversation")
	Must(t, err)
	MustEqual(t, "ListTraces of an unknown conversation", len(list), 0)
	_, err = s.TraceByID(ctx, "no-such-trace")
	MustCode(t, err, engine.ENOTFOUND)
}

// mustFeedback saves f, fails tb on an error and checks that f was
// filled with stored times.
func mustFeedback(tb testing.TB, s engine.FeedbackStore, f *engine.Feedback) *engine.Feedback {
	tb.Helper()
	Must(tb, s.SaveFeedback(tb.Context(), f))
	mustStoredTime(tb, "CreatedAt", f.CreatedAt)
	mustStoredTime(tb, "UpdatedAt", f.UpdatedAt)
	return f
}

// mustTrace saves a trace with the id.
func mustTrace(t *testing.T, s engine.Store, id string) *engine.Trace {
	t.Helper()
	tr := &engine.Trace{ID: id, ConversationID: "conv-1", Platform: engine.PlatformSlack, Outcome: engine.OutcomeAnswered}
	Must(t, s.SaveTrace(t.Context(), tr))
	return tr
}

func testFeedback(t *testing.T, s engine.Store) {
	ctx := t.Context()
	tr := mustTrace(t, s, "trace-1")
	other := mustTrace(t, s, "trace-2")
	none, err := s.FeedbackForTrace(ctx, tr.ID)
	Must(t, err)
	MustEqual(t, "feedback of a trace without any", len(none), 0)

	// Saved out of order; preset creation times decide the listing's order,
	// and ties are broken by platform, then user.
	base := time.Now().Add(-time.Hour)
	up := mustFeedback(t, s, &engine.Feedback{TraceID: tr.ID, Platform: engine.PlatformSlack, UserID: "U1",
		Rating: engine.RatingUp, CreatedAt: base.Add(time.Second)})
	down := mustFeedback(t, s, &engine.Feedback{TraceID: tr.ID, Platform: engine.PlatformSlack, UserID: "U2",
		Rating: engine.RatingDown, Comment: "  Wrong «version»: see 2.3 ", CreatedAt: base.Add(2 * time.Second)})
	console := mustFeedback(t, s, &engine.Feedback{TraceID: tr.ID, Platform: engine.PlatformConsole, UserID: "user-1",
		Rating: engine.RatingUp, CreatedAt: base})
	sameUserElsewhere := mustFeedback(t, s, &engine.Feedback{TraceID: tr.ID, Platform: engine.PlatformDiscord, UserID: "U1",
		Rating: engine.RatingDown, CreatedAt: base.Add(time.Second)})
	otherTrace := mustFeedback(t, s, &engine.Feedback{TraceID: other.ID, Platform: engine.PlatformSlack, UserID: "U1",
		Rating: engine.RatingDown})
	MustEqual(t, "preset CreatedAt", up.CreatedAt, stored(base.Add(time.Second)))
	MustEqual(t, "trimmed comment", down.Comment, "Wrong «version»: see 2.3")
	MustEqual(t, "CreatedAt of a new rating without one", otherTrace.CreatedAt, otherTrace.UpdatedAt)

	want := []*engine.Feedback{console, sameUserElsewhere, up, down}
	got, err := s.FeedbackForTrace(ctx, tr.ID)
	Must(t, err)
	MustEqual(t, "FeedbackForTrace (oldest first)", got, want)
	got, err = s.FeedbackForTrace(ctx, other.ID)
	Must(t, err)
	MustEqual(t, "FeedbackForTrace of another trace", got, []*engine.Feedback{otherTrace})

	// A user changes their mind: the rating is replaced, and keeps its
	// creation time (and so its place in the listing).
	changed := mustFeedback(t, s, &engine.Feedback{TraceID: tr.ID, Platform: engine.PlatformSlack, UserID: "U1",
		Rating: engine.RatingDown, Comment: "Outdated.", CreatedAt: time.Now()})
	MustEqual(t, "CreatedAt of a replaced rating", changed.CreatedAt, up.CreatedAt)
	if changed.UpdatedAt.Before(up.UpdatedAt) {
		t.Fatalf("UpdatedAt of a replaced rating %v before the first's %v", changed.UpdatedAt, up.UpdatedAt)
	}
	// And back, without a comment: the comment is replaced too.
	changed = mustFeedback(t, s, &engine.Feedback{TraceID: tr.ID, Platform: engine.PlatformSlack, UserID: "U1", Rating: engine.RatingUp})
	MustEqual(t, "CreatedAt of a replaced rating", changed.CreatedAt, up.CreatedAt)
	want = []*engine.Feedback{console, sameUserElsewhere, changed, down}
	got, err = s.FeedbackForTrace(ctx, tr.ID)
	Must(t, err)
	MustEqual(t, "FeedbackForTrace after a change of mind", got, want)

	// Saving the trace again (as the engine does) keeps its feedback.
	tr.Outcome, tr.Error = engine.OutcomeFailed, "post answer: timeout"
	Must(t, s.SaveTrace(ctx, tr))
	got, err = s.FeedbackForTrace(ctx, tr.ID)
	Must(t, err)
	MustEqual(t, "FeedbackForTrace after the trace was saved again", got, want)

	got, err = s.FeedbackForTrace(ctx, "no-such-trace")
	Must(t, err)
	MustEqual(t, "feedback of an unknown trace", len(got), 0)
}

func testFeedbackErrors(t *testing.T, s engine.Store) {
	ctx := t.Context()
	tr := mustTrace(t, s, "trace-1")
	first := mustFeedback(t, s, &engine.Feedback{TraceID: tr.ID, Platform: engine.PlatformSlack, UserID: "U1",
		Rating: engine.RatingUp, Comment: "Thanks!"})

	valid := engine.Feedback{TraceID: tr.ID, Platform: engine.PlatformSlack, UserID: "U1", Rating: engine.RatingDown}
	tests := []struct {
		name string
		edit func(f *engine.Feedback)
		code string
	}{
		{"unknown trace", func(f *engine.Feedback) { f.TraceID = "no-such-trace" }, engine.ENOTFOUND},
		{"no trace", func(f *engine.Feedback) { f.TraceID = "" }, engine.EINVALID},
		{"no platform", func(f *engine.Feedback) { f.Platform = "" }, engine.EINVALID},
		{"no user", func(f *engine.Feedback) { f.UserID = "" }, engine.EINVALID},
		{"no rating", func(f *engine.Feedback) { f.Rating = 0 }, engine.EINVALID},
		{"rating out of range", func(f *engine.Feedback) { f.Rating = 2 }, engine.EINVALID},
		{"comment too long", func(f *engine.Feedback) { f.Comment = strings.Repeat("x", engine.MaxFeedbackComment+1) }, engine.EINVALID},
		{"comment not UTF-8", func(f *engine.Feedback) { f.Comment = "\xff\xfe" }, engine.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := valid
			tt.edit(&f)
			err := s.SaveFeedback(ctx, &f)
			MustCode(t, err, tt.code)
			if tt.code == engine.ENOTFOUND {
				mustMessageNames(t, err, f.TraceID)
			}
		})
	}

	// Failed saves changed nothing, and stored nothing for the unknown trace.
	got, err := s.FeedbackForTrace(ctx, tr.ID)
	Must(t, err)
	MustEqual(t, "feedback after failed saves", got, []*engine.Feedback{first})
	got, err = s.FeedbackForTrace(ctx, "no-such-trace")
	Must(t, err)
	MustEqual(t, "feedback of the unknown trace", len(got), 0)
}

func testKnowledgeBases(t *testing.T, s engine.Store) {
	ctx := t.Context()
	docs := &engine.KnowledgeBase{Name: "docs", Description: "Product documentation"}
	Must(t, s.CreateKnowledgeBase(ctx, docs))
	if docs.ID == "" {
		t.Fatal("CreateKnowledgeBase left ID empty")
	}
	mustStoredTime(t, "CreatedAt", docs.CreatedAt)
	got, err := s.KnowledgeBaseByName(ctx, "docs")
	Must(t, err)
	MustEqual(t, "KnowledgeBaseByName", got, docs)

	zeta := &engine.KnowledgeBase{Name: "zeta"}
	alpha := &engine.KnowledgeBase{Name: "alpha"}
	Must(t, s.CreateKnowledgeBase(ctx, zeta))
	Must(t, s.CreateKnowledgeBase(ctx, alpha))
	list, err := s.ListKnowledgeBases(ctx)
	Must(t, err)
	MustEqual(t, "ListKnowledgeBases (ordered by name)", list, []*engine.KnowledgeBase{alpha, docs, zeta})

	errs := []struct {
		name string
		err  func() error
		code string
	}{
		{"duplicate name", func() error { return s.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: "docs"}) }, engine.ECONFLICT},
		{"invalid name", func() error { return s.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: "Bad Name"}) }, engine.EINVALID},
		{"unknown name", func() error { _, err := s.KnowledgeBaseByName(ctx, "nope"); return err }, engine.ENOTFOUND},
		{"delete unknown", func() error { return s.DeleteKnowledgeBase(ctx, "nope") }, engine.ENOTFOUND},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			MustCode(t, err, tt.code)
			if tt.code == engine.ECONFLICT {
				mustMessageNames(t, err, "docs")
			}
		})
	}
	Must(t, s.DeleteKnowledgeBase(ctx, "zeta"))
	_, err = s.KnowledgeBaseByName(ctx, "zeta")
	MustCode(t, err, engine.ENOTFOUND)
}

func mustKnowledgeBase(t *testing.T, s engine.Store, name string) {
	t.Helper()
	Must(t, s.CreateKnowledgeBase(t.Context(), &engine.KnowledgeBase{Name: name}))
}

func withoutContent(d *engine.Document) *engine.Document {
	c := *d
	c.Content = nil
	return &c
}

func testDocuments(t *testing.T, s engine.Store) {
	ctx := t.Context()
	mustKnowledgeBase(t, s, "docs")
	mustKnowledgeBase(t, s, "faq")

	guide := &engine.Document{KnowledgeBase: "docs", Source: "guide/b.md", Title: "Guide", ContentType: "text/markdown",
		Content: []byte("# Guide\x00\xff binary-safe"), SHA256: "sha-1", Size: 22}
	Must(t, s.SaveDocument(ctx, guide))
	if guide.ID == "" {
		t.Fatal("SaveDocument left ID empty")
	}
	MustEqual(t, "status of a new document", guide.Status, engine.DocumentPending)
	mustStoredTime(t, "CreatedAt", guide.CreatedAt)
	got, err := s.DocumentByID(ctx, guide.ID)
	Must(t, err)
	MustEqual(t, "DocumentByID", got, guide)
	got, err = s.DocumentBySource(ctx, "docs", "guide/b.md")
	Must(t, err)
	MustEqual(t, "DocumentBySource", got, guide)

	// Saving the same source again replaces the document and keeps its ID.
	replaced := &engine.Document{KnowledgeBase: "docs", Source: "guide/b.md", Title: "Guide v2", ContentType: "text/plain",
		Content: []byte("new content"), SHA256: "sha-2", Size: 11, Status: engine.DocumentIndexed, Chunks: 3}
	Must(t, s.SaveDocument(ctx, replaced))
	MustEqual(t, "ID of a replaced document", replaced.ID, guide.ID)
	MustEqual(t, "CreatedAt of a replaced document", replaced.CreatedAt, guide.CreatedAt)
	got, err = s.DocumentByID(ctx, guide.ID)
	Must(t, err)
	MustEqual(t, "replaced document", got, replaced)

	a := &engine.Document{KnowledgeBase: "docs", Source: "a.md", Content: []byte("a")}
	c := &engine.Document{KnowledgeBase: "docs", Source: "c.md"} // no content
	sameSource := &engine.Document{KnowledgeBase: "faq", Source: "a.md", Content: []byte("faq a")}
	for _, d := range []*engine.Document{c, a, sameSource} {
		Must(t, s.SaveDocument(ctx, d))
	}
	if sameSource.ID == a.ID {
		t.Fatal("the same source in two knowledge bases shares one document")
	}
	got, err = s.DocumentByID(ctx, c.ID)
	Must(t, err)
	if got.Content == nil || len(got.Content) != 0 {
		t.Fatalf("content of an empty document = %#v, want empty", got.Content)
	}

	list, err := s.ListDocuments(ctx, "docs")
	Must(t, err)
	wantC := withoutContent(c)
	MustEqual(t, "ListDocuments (ordered by source, without content)", list,
		[]*engine.Document{withoutContent(a), wantC, withoutContent(replaced)})

	Must(t, s.SetDocumentStatus(ctx, a.ID, engine.DocumentFailed, 0, "unsupported format"))
	got, err = s.DocumentByID(ctx, a.ID)
	Must(t, err)
	if got.Status != engine.DocumentFailed || got.Error != "unsupported format" || got.Chunks != 0 || got.UpdatedAt.Before(a.UpdatedAt) {
		t.Fatalf("document after SetDocumentStatus(failed) = %+v", got)
	}
	Must(t, s.SetDocumentStatus(ctx, a.ID, engine.DocumentIndexed, 12, ""))
	got, err = s.DocumentByID(ctx, a.ID)
	Must(t, err)
	if got.Status != engine.DocumentIndexed || got.Error != "" || got.Chunks != 12 || !bytes.Equal(got.Content, []byte("a")) {
		t.Fatalf("document after SetDocumentStatus(indexed) = %+v", got)
	}

	errs := []struct {
		name string
		err  func() error
		code string
	}{
		{"unknown knowledge base", func() error {
			return s.SaveDocument(ctx, &engine.Document{KnowledgeBase: "nope", Source: "x.md"})
		}, engine.ENOTFOUND},
		{"no source", func() error { return s.SaveDocument(ctx, &engine.Document{KnowledgeBase: "docs"}) }, engine.EINVALID},
		{"id of another document", func() error {
			return s.SaveDocument(ctx, &engine.Document{ID: a.ID, KnowledgeBase: "docs", Source: "other.md"})
		}, engine.ECONFLICT},
		{"unknown id", func() error { _, err := s.DocumentByID(ctx, "no-such-document"); return err }, engine.ENOTFOUND},
		{"unknown source", func() error { _, err := s.DocumentBySource(ctx, "docs", "nope.md"); return err }, engine.ENOTFOUND},
		{"source of another knowledge base", func() error { _, err := s.DocumentBySource(ctx, "faq", "c.md"); return err }, engine.ENOTFOUND},
		{"status of unknown", func() error { return s.SetDocumentStatus(ctx, "no-such-document", engine.DocumentIndexed, 1, "") }, engine.ENOTFOUND},
		{"delete unknown", func() error { return s.DeleteDocument(ctx, "no-such-document") }, engine.ENOTFOUND},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { MustCode(t, tt.err(), tt.code) })
	}

	Must(t, s.DeleteDocument(ctx, a.ID))
	_, err = s.DocumentByID(ctx, a.ID)
	MustCode(t, err, engine.ENOTFOUND)
	MustCode(t, s.DeleteDocument(ctx, a.ID), engine.ENOTFOUND)
	got, err = s.DocumentBySource(ctx, "faq", "a.md")
	Must(t, err)
	MustEqual(t, "document of the other knowledge base", got, sameSource)
	none, err := s.ListDocuments(ctx, "nope")
	Must(t, err)
	MustEqual(t, "documents of an unknown knowledge base", len(none), 0)
}

func testDeleteKnowledgeBaseCascades(t *testing.T, s engine.Store) {
	ctx := t.Context()
	mustKnowledgeBase(t, s, "docs")
	mustKnowledgeBase(t, s, "faq")
	var docs []*engine.Document
	for _, src := range []string{"a.md", "b.md"} {
		d := &engine.Document{KnowledgeBase: "docs", Source: src, Content: []byte(src)}
		Must(t, s.SaveDocument(ctx, d))
		docs = append(docs, d)
	}
	kept := &engine.Document{KnowledgeBase: "faq", Source: "a.md", Content: []byte("kept")}
	Must(t, s.SaveDocument(ctx, kept))

	Must(t, s.DeleteKnowledgeBase(ctx, "docs"))
	for _, d := range docs {
		_, err := s.DocumentByID(ctx, d.ID)
		MustCode(t, err, engine.ENOTFOUND)
	}
	list, err := s.ListDocuments(ctx, "docs")
	Must(t, err)
	MustEqual(t, "documents of a deleted knowledge base", len(list), 0)
	got, err := s.DocumentByID(ctx, kept.ID)
	Must(t, err)
	MustEqual(t, "document of another knowledge base", got, kept)

	// A knowledge base created again under the name starts empty.
	mustKnowledgeBase(t, s, "docs")
	list, err = s.ListDocuments(ctx, "docs")
	Must(t, err)
	MustEqual(t, "documents of a re-created knowledge base", len(list), 0)
}

func event(platform engine.Platform, eventID, thread string) *engine.InboxEvent {
	return &engine.InboxEvent{Platform: platform, EventID: eventID, ThreadKey: thread,
		Payload: []byte(`{"id":"` + eventID + `"}`)}
}

func mustEnqueue(t *testing.T, s engine.Store, e *engine.InboxEvent) *engine.InboxEvent {
	t.Helper()
	inserted, err := s.Enqueue(t.Context(), e)
	Must(t, err)
	if !inserted {
		t.Fatalf("Enqueue(%s) was not inserted", e.EventID)
	}
	return e
}

// mustClaim claims an event and fails unless it is want.
func mustClaim(t *testing.T, s engine.Store, owner string, lease time.Duration, want *engine.InboxEvent) *engine.InboxEvent {
	t.Helper()
	got, err := s.Claim(t.Context(), owner, lease)
	if err != nil {
		t.Fatalf("Claim by %s: %v (want %s)", owner, err, want.EventID)
	}
	if got.ID != want.ID {
		t.Fatalf("Claim by %s = %s, want %s", owner, got.EventID, want.EventID)
	}
	return got
}

func mustClaimNothing(t *testing.T, s engine.Store) {
	t.Helper()
	got, err := s.Claim(t.Context(), "nobody", time.Hour)
	if err == nil {
		t.Fatalf("Claim = %s (%s), want nothing ready", got.EventID, got.ThreadKey)
	}
	MustCode(t, err, engine.ENOTFOUND)
}

func testEnqueueIdempotent(t *testing.T, s engine.Store) {
	ctx := t.Context()
	received := time.Now().Add(-time.Second)
	e := event(engine.PlatformSlack, "Ev1", "slack:C1:T1")
	e.ReceivedAt = received
	inserted, err := s.Enqueue(ctx, e)
	Must(t, err)
	if !inserted {
		t.Fatal("first Enqueue was not inserted")
	}
	if e.ID == "" || e.Status != engine.EventPending || e.Attempts != 0 {
		t.Fatalf("enqueued event = %+v", e)
	}
	MustEqual(t, "ReceivedAt", e.ReceivedAt, stored(received))
	mustStoredTime(t, "AvailableAt", e.AvailableAt)
	mustStoredTime(t, "UpdatedAt", e.UpdatedAt)
	got, err := s.InboxEventByID(ctx, e.ID)
	Must(t, err)
	MustEqual(t, "InboxEventByID", got, e)

	dup := event(engine.PlatformSlack, "Ev1", "slack:C1:T1")
	dup.Payload = []byte(`{"retried":true}`)
	inserted, err = s.Enqueue(ctx, dup)
	Must(t, err)
	if inserted {
		t.Fatal("duplicate Enqueue was inserted")
	}
	MustEqual(t, "duplicate filled with the stored event", dup, e)

	other := mustEnqueue(t, s, event(engine.PlatformDiscord, "Ev1", "discord:C1:T1"))
	if other.ID == e.ID {
		t.Fatal("one event id on two platforms shares a record")
	}
	noThread := mustEnqueue(t, s, &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: "Ev2"})
	MustEqual(t, "default thread key", noThread.ThreadKey, "slack:Ev2")
	if noThread.Payload == nil {
		t.Fatal("nil payload read back nil")
	}

	_, err = s.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformSlack})
	MustCode(t, err, engine.EINVALID)
	_, err = s.InboxEventByID(ctx, "no-such-event")
	MustCode(t, err, engine.ENOTFOUND)
}

func testClaimOrder(t *testing.T, s engine.Store) {
	ctx := t.Context()
	mustClaimNothing(t, s)
	a1 := mustEnqueue(t, s, event(engine.PlatformSlack, "A1", "thread-a"))
	b1 := mustEnqueue(t, s, event(engine.PlatformSlack, "B1", "thread-b"))
	a2 := mustEnqueue(t, s, event(engine.PlatformSlack, "A2", "thread-a"))
	c1 := mustEnqueue(t, s, event(engine.PlatformDiscord, "C1", "thread-c"))

	before := time.Now()
	got := mustClaim(t, s, "w1", time.Hour, a1)
	if got.Status != engine.EventLeased || got.Attempts != 1 || got.LeaseOwner != "w1" {
		t.Fatalf("claimed event = %+v", got)
	}
	if got.LeasedUntil.Before(stored(before.Add(time.Hour))) || got.LeasedUntil.After(time.Now().Add(time.Hour)) {
		t.Fatalf("LeasedUntil = %v, want about an hour from now", got.LeasedUntil)
	}
	mustStoredTime(t, "LeasedUntil", got.LeasedUntil)
	byID, err := s.InboxEventByID(ctx, a1.ID)
	Must(t, err)
	MustEqual(t, "claimed event read back", byID, got)
	MustEqual(t, "payload", got.Payload, a1.Payload)

	// A2 waits for A1, so the next claims skip thread A.
	mustClaim(t, s, "w2", time.Hour, b1)
	mustClaim(t, s, "w3", time.Hour, c1)
	mustClaimNothing(t, s)

	Must(t, s.Complete(ctx, a1.ID, "w1"))
	done, err := s.InboxEventByID(ctx, a1.ID)
	Must(t, err)
	MustEqual(t, "status after Complete", done.Status, engine.EventDoneSt)
	mustClaim(t, s, "w1", time.Hour, a2)
	mustClaimNothing(t, s)
	MustCode(t, func() error { _, err := s.Claim(ctx, "", time.Hour); return err }(), engine.EINVALID)
}

func testInboxOwnerChecks(t *testing.T, s engine.Store) {
	ctx := t.Context()
	leased := mustEnqueue(t, s, event(engine.PlatformSlack, "L1", "thread-l"))
	done := mustEnqueue(t, s, event(engine.PlatformSlack, "D1", "thread-d"))
	pending := mustEnqueue(t, s, event(engine.PlatformSlack, "P1", "thread-p"))
	mustClaim(t, s, "w1", time.Hour, leased)
	mustClaim(t, s, "w1", time.Hour, done)
	Must(t, s.Complete(ctx, done.ID, "w1"))

	ops := []struct {
		name string
		run  func(id, owner string) error
	}{
		{"Complete", func(id, owner string) error { return s.Complete(ctx, id, owner) }},
		{"Retry", func(id, owner string) error { return s.Retry(ctx, id, owner, time.Now(), "x") }},
		{"DeadLetter", func(id, owner string) error { return s.DeadLetter(ctx, id, owner, "x") }},
	}
	cases := []struct {
		name  string
		id    string
		owner string
		code  string
	}{
		{"another owner", leased.ID, "w2", engine.ECONFLICT},
		{"an event never claimed", pending.ID, "w1", engine.ECONFLICT},
		{"a finished event", done.ID, "w1", engine.ECONFLICT},
		{"an unknown event", "no-such-event", "w1", engine.ENOTFOUND},
	}
	for _, op := range ops {
		for _, tt := range cases {
			t.Run(op.name+" of "+tt.name, func(t *testing.T) {
				MustCode(t, op.run(tt.id, tt.owner), tt.code)
			})
		}
	}
	got, err := s.InboxEventByID(ctx, leased.ID)
	Must(t, err)
	if got.Status != engine.EventLeased || got.LeaseOwner != "w1" || got.Attempts != 1 {
		t.Fatalf("leased event changed by failed calls: %+v", got)
	}
	got, err = s.InboxEventByID(ctx, done.ID)
	Must(t, err)
	MustEqual(t, "finished event status", got.Status, engine.EventDoneSt)
}

func testInboxRetry(t *testing.T, s engine.Store) {
	ctx := t.Context()
	e1 := mustEnqueue(t, s, event(engine.PlatformSlack, "E1", "thread-e"))
	e2 := mustEnqueue(t, s, event(engine.PlatformSlack, "E2", "thread-e"))
	mustClaim(t, s, "w1", time.Hour, e1)

	later := time.Now().Add(time.Hour)
	Must(t, s.Retry(ctx, e1.ID, "w1", later, "model unavailable"))
	got, err := s.InboxEventByID(ctx, e1.ID)
	Must(t, err)
	if got.Status != engine.EventPending || got.LastError != "model unavailable" || got.LeaseOwner != "" ||
		!got.LeasedUntil.IsZero() || got.Attempts != 1 {
		t.Fatalf("event after Retry = %+v", got)
	}
	MustEqual(t, "AvailableAt after Retry", got.AvailableAt, stored(later))
	// E1 is not due, and E2 waits for it.
	mustClaimNothing(t, s)
	other := mustEnqueue(t, s, event(engine.PlatformSlack, "F1", "thread-f"))
	mustClaim(t, s, "w2", time.Hour, other)

	// A retry that is due at once can be claimed again; the error stays
	// recorded while the event is leased.
	r1 := mustEnqueue(t, s, event(engine.PlatformSlack, "R1", "thread-r"))
	r2 := mustEnqueue(t, s, event(engine.PlatformSlack, "R2", "thread-r"))
	mustClaim(t, s, "w1", time.Hour, r1)
	Must(t, s.Retry(ctx, r1.ID, "w1", time.Now().Add(-time.Second), "timeout"))
	claimed := mustClaim(t, s, "w3", time.Hour, r1)
	if claimed.Attempts != 2 || claimed.LastError != "timeout" || claimed.LeaseOwner != "w3" {
		t.Fatalf("event claimed after Retry = %+v", claimed)
	}
	MustCode(t, s.Complete(ctx, r1.ID, "w1"), engine.ECONFLICT)
	Must(t, s.Complete(ctx, r1.ID, "w3"))
	mustClaim(t, s, "w3", time.Hour, r2)
	mustClaimNothing(t, s)
	waiting, err := s.InboxEventByID(ctx, e2.ID)
	Must(t, err)
	if waiting.Status != engine.EventPending || waiting.Attempts != 0 {
		t.Fatalf("event waiting behind a retried one = %+v", waiting)
	}
}

// testInboxPurge: PurgeInbox deletes done events updated before the
// cutoff, oldest first, at most limit; unfinished and dead-lettered events
// stay; a purged event's id can be stored again.
func testInboxPurge(t *testing.T, s engine.Store) {
	ctx := t.Context()
	finish := func(id string) *engine.InboxEvent {
		e := mustEnqueue(t, s, event(engine.PlatformSlack, id, "thread-"+id))
		e = mustClaim(t, s, "w", time.Hour, e)
		Must(t, s.Complete(ctx, e.ID, "w"))
		return e
	}
	a, b := finish("PA"), finish("PB")
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	finish("PC") // done after the cutoff
	dead := mustEnqueue(t, s, event(engine.PlatformSlack, "PD", "thread-PD"))
	mustClaim(t, s, "w", time.Hour, dead)
	Must(t, s.DeadLetter(ctx, dead.ID, "w", "gave up"))
	leased := mustClaim(t, s, "w", time.Hour, mustEnqueue(t, s, event(engine.PlatformSlack, "PE", "thread-PE")))
	pending := mustEnqueue(t, s, event(engine.PlatformSlack, "PF", "thread-PF"))

	_, err := s.PurgeInbox(ctx, cutoff, 0)
	MustCode(t, err, engine.EINVALID)
	n, err := s.PurgeInbox(ctx, cutoff, 1)
	Must(t, err)
	MustEqual(t, "deleted with limit 1", n, 1)
	if _, err := s.InboxEventByID(ctx, a.ID); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Fatalf("the oldest done event after the purge: %v, want ENOTFOUND", err)
	}
	n, err = s.PurgeInbox(ctx, cutoff, 100)
	Must(t, err)
	MustEqual(t, "deleted with limit 100", n, 1) // PB; PC is newer than the cutoff
	if _, err := s.InboxEventByID(ctx, b.ID); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Fatalf("PB after the purge: %v, want ENOTFOUND", err)
	}
	for _, e := range []*engine.InboxEvent{dead, leased, pending} {
		if _, err := s.InboxEventByID(ctx, e.ID); err != nil {
			t.Errorf("%s (%s) after the purge: %v, want it kept", e.EventID, e.Status, err)
		}
	}
	n, err = s.PurgeInbox(ctx, time.Now().Add(time.Hour), 100)
	Must(t, err)
	MustEqual(t, "deleted once PC is older than the cutoff", n, 1)
	// A purged id is forgotten: delivered again, the event is stored again.
	again := event(engine.PlatformSlack, "PA", "thread-PA")
	inserted, err := s.Enqueue(ctx, again)
	Must(t, err)
	if !inserted || again.ID == a.ID {
		t.Errorf("PA delivered after its purge: inserted %v, id %s (was %s); want a new event", inserted, again.ID, a.ID)
	}
}

func testInboxDeadLetter(t *testing.T, s engine.Store) {
	ctx := t.Context()
	e1 := mustEnqueue(t, s, event(engine.PlatformMattermost, "E1", "thread-e"))
	e2 := mustEnqueue(t, s, event(engine.PlatformMattermost, "E2", "thread-e"))
	mustClaim(t, s, "w1", time.Hour, e1)
	Must(t, s.DeadLetter(ctx, e1.ID, "w1", "gave up after 5 attempts"))
	got, err := s.InboxEventByID(ctx, e1.ID)
	Must(t, err)
	if got.Status != engine.EventDead || got.LastError != "gave up after 5 attempts" {
		t.Fatalf("event after DeadLetter = %+v", got)
	}
	// A dead event is finished: the thread goes on.
	mustClaim(t, s, "w1", time.Hour, e2)
	mustClaimNothing(t, s)
}

func testInboxLeaseExpiry(t *testing.T, s engine.Store) {
	ctx := t.Context()
	x1 := mustEnqueue(t, s, event(engine.PlatformSlack, "X1", "thread-x"))
	x2 := mustEnqueue(t, s, event(engine.PlatformSlack, "X2", "thread-x"))
	mustClaim(t, s, "w1", time.Millisecond, x1)
	time.Sleep(20 * time.Millisecond)

	// The expired lease makes X1 available again, still ahead of X2.
	got := mustClaim(t, s, "w2", time.Hour, x1)
	if got.Attempts != 2 || got.LeaseOwner != "w2" {
		t.Fatalf("event claimed after its lease expired = %+v", got)
	}
	MustCode(t, s.Complete(ctx, x1.ID, "w1"), engine.ECONFLICT)
	mustClaimNothing(t, s)
	Must(t, s.Complete(ctx, x1.ID, "w2"))
	mustClaim(t, s, "w1", time.Millisecond, x2)
	time.Sleep(20 * time.Millisecond)
	// An expired lease nobody took over still belongs to its owner.
	Must(t, s.Complete(ctx, x2.ID, "w1"))
	mustClaimNothing(t, s)
}

func testInboxFutureEventBlocksThread(t *testing.T, s engine.Store) {
	f1 := event(engine.PlatformSlack, "F1", "thread-f")
	f1.AvailableAt = time.Now().Add(time.Hour)
	mustEnqueue(t, s, f1)
	MustEqual(t, "AvailableAt", f1.AvailableAt, stored(f1.AvailableAt))
	mustEnqueue(t, s, event(engine.PlatformSlack, "F2", "thread-f"))
	mustClaimNothing(t, s)
	g1 := mustEnqueue(t, s, event(engine.PlatformSlack, "G1", "thread-g"))
	mustClaim(t, s, "w1", time.Hour, g1)
}

func testConcurrentClaimers(t *testing.T, s engine.Store) {
	ctx := t.Context()
	const events, workers = 40, 4
	for i := range events {
		mustEnqueue(t, s, event(engine.PlatformSlack, fmt.Sprintf("E%02d", i), fmt.Sprintf("thread-%02d", i)))
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
	)
	for w := range workers {
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for {
				e, err := s.Claim(ctx, owner, time.Hour)
				if engine.IsNotFound(err) {
					return
				}
				if err != nil {
					t.Errorf("Claim by %s: %v", owner, err)
					return
				}
				mu.Lock()
				if prev, ok := claimed[e.ID]; ok {
					t.Errorf("event %s claimed by %s and %s", e.EventID, prev, owner)
				}
				claimed[e.ID] = owner
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	MustEqual(t, "events claimed", len(claimed), events)
}

// testConcurrentEnqueue delivers 20 events 5 times each, all at once (a
// burst with redeliveries): each is stored once, every other delivery
// sees the stored event.
func testConcurrentEnqueue(t *testing.T, s engine.Store) {
	ctx := t.Context()
	const events, deliveries = 20, 5
	var (
		mu       sync.Mutex
		inserted = map[string]int{}
		ids      = map[string]map[string]bool{}
		wg       sync.WaitGroup
	)
	for i := range events * deliveries {
		wg.Go(func() {
			e := event(engine.PlatformSlack, fmt.Sprintf("B%02d", i%events), fmt.Sprintf("thread-%02d", i%events))
			ok, err := s.Enqueue(ctx, e)
			if err != nil {
				t.Errorf("Enqueue %s: %v", e.EventID, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				inserted[e.EventID]++
			}
			if ids[e.EventID] == nil {
				ids[e.EventID] = map[string]bool{}
			}
			ids[e.EventID][e.ID] = true
		})
	}
	wg.Wait()
	for i := range events {
		id := fmt.Sprintf("B%02d", i)
		if inserted[id] != 1 || len(ids[id]) != 1 {
			t.Errorf("%s: inserted %d times, %d distinct stored ids; want once, one id", id, inserted[id], len(ids[id]))
		}
	}
}

// testConcurrentEnqueueFailureAlone stores events at once while one of
// them cannot be stored (its id is taken by another event): that one
// fails, and every other event of the same moment (written in the same
// batch by a store that groups writes) is stored.
func testConcurrentEnqueueFailureAlone(t *testing.T, s engine.Store) {
	ctx := t.Context()
	taken := mustEnqueue(t, s, event(engine.PlatformSlack, "G-first", "thread-g"))
	const good = 16
	var (
		wg      sync.WaitGroup
		errs    = make([]error, good+1)
		stored  = make([]bool, good+1)
		start   = make(chan struct{})
		badSlot = good
	)
	for i := range good + 1 {
		wg.Go(func() {
			e := event(engine.PlatformSlack, fmt.Sprintf("G%02d", i), fmt.Sprintf("thread-g%02d", i))
			if i == badSlot {
				e.ID = taken.ID
			}
			<-start
			stored[i], errs[i] = s.Enqueue(ctx, e)
		})
	}
	close(start)
	wg.Wait()
	if errs[badSlot] == nil {
		t.Errorf("Enqueue of an event whose id is taken: no error (stored %v)", stored[badSlot])
	}
	for i := range good {
		if errs[i] != nil || !stored[i] {
			t.Errorf("G%02d: stored %v, error %v; want stored (only the event with the taken id fails)", i, stored[i], errs[i])
		}
	}
	// What was stored: every event but the failed one.
	want := map[string]bool{taken.EventID: true}
	for i := range good {
		want[fmt.Sprintf("G%02d", i)] = true
	}
	MustEqual(t, "stored events", claimAll(t, s), want)
}

// EnqueueBatchFailsAlone checks a store's group-commit batch writer (batch:
// the function Enqueue hands its batches to, exported for tests) with a
// batch whose middle event cannot be stored (its id is taken): that event
// fails, and the events before and after it in the batch are stored.
func EnqueueBatchFailsAlone(t *testing.T, s engine.Store, batch func(context.Context, []*engine.InboxEvent) []error) {
	t.Helper()
	ctx := t.Context()
	taken := mustEnqueue(t, s, event(engine.PlatformSlack, "H-first", "thread-h"))
	evs := []*engine.InboxEvent{
		event(engine.PlatformSlack, "H1", "thread-h1"),
		event(engine.PlatformSlack, "H2", "thread-h2"),
		event(engine.PlatformSlack, "H3", "thread-h3"),
	}
	for _, e := range evs {
		Must(t, e.Normalize(time.Now()))
	}
	evs[1].ID = taken.ID
	errs := batch(ctx, evs)
	if len(errs) != len(evs) {
		t.Fatalf("batch of %d returned %d results", len(evs), len(errs))
	}
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Errorf("batch results %v; want only the second (id taken) to fail", errs)
	}
	MustEqual(t, "stored events", claimAll(t, s), map[string]bool{"H-first": true, "H1": true, "H3": true})
}

// claimAll claims every ready event and returns their event ids.
func claimAll(t *testing.T, s engine.Store) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for {
		e, err := s.Claim(t.Context(), "w", time.Hour)
		if engine.IsNotFound(err) {
			return got
		}
		Must(t, err)
		got[e.EventID] = true
	}
}

func testConcurrentWorkers(t *testing.T, s engine.Store) {
	ctx := t.Context()
	const threads, perThread, workers = 4, 6, 4
	for i := range perThread {
		for th := range threads {
			mustEnqueue(t, s, event(engine.PlatformSlack, fmt.Sprintf("T%d-%d", th, i), fmt.Sprintf("thread-%d", th)))
		}
	}
	var (
		mu     sync.Mutex
		active = map[string]string{} // thread key -> event being handled
		order  = map[string][]string{}
		failed bool
		wg     sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		mu.Lock()
		failed = true
		mu.Unlock()
	}
	deadline := time.Now().Add(10 * time.Second)
	for w := range workers {
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for time.Now().Before(deadline) {
				e, err := s.Claim(ctx, owner, time.Hour)
				if engine.IsNotFound(err) {
					mu.Lock()
					n := 0
					for _, ids := range order {
						n += len(ids)
					}
					stop := failed
					mu.Unlock()
					if n == threads*perThread || stop {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					fail("Claim by %s: %v", owner, err)
					return
				}
				mu.Lock()
				if other, busy := active[e.ThreadKey]; busy {
					t.Errorf("%s claimed %s while %s of the same thread was leased", owner, e.EventID, other)
					failed = true
				}
				active[e.ThreadKey] = e.EventID
				order[e.ThreadKey] = append(order[e.ThreadKey], e.EventID)
				mu.Unlock()

				time.Sleep(200 * time.Microsecond) // handle the event
				mu.Lock()                          // done before Complete, so no false alarm
				delete(active, e.ThreadKey)
				mu.Unlock()
				if err := s.Complete(ctx, e.ID, owner); err != nil {
					fail("Complete by %s: %v", owner, err)
					return
				}
			}
			fail("worker %s gave up", owner)
		})
	}
	wg.Wait()
	for th := range threads {
		key := fmt.Sprintf("thread-%d", th)
		var want []string
		for i := range perThread {
			want = append(want, fmt.Sprintf("T%d-%d", th, i))
		}
		MustEqual(t, "order of "+key, order[key], want)
	}
}

func testOutbox(t *testing.T, s engine.Store) {
	ctx := t.Context()
	posted := time.Now().Add(-time.Minute)
	parts := []*engine.OutboundMessage{
		{Platform: engine.PlatformSlack, EventID: "Ev1", Part: 2, ChannelID: "C1", MessageID: "1700000000.000300"},
		{Platform: engine.PlatformSlack, EventID: "Ev1", Part: 0, ChannelID: "C1", MessageID: "1700000000.000100", CreatedAt: posted},
		{Platform: engine.PlatformSlack, EventID: "Ev1", Part: 1, ChannelID: "C1", MessageID: "1700000000.000200"},
		{Platform: engine.PlatformDiscord, EventID: "Ev1", Part: 0, ChannelID: "D1", MessageID: "99"},
	}
	for _, m := range parts {
		Must(t, s.RecordOutbound(ctx, m))
		mustStoredTime(t, "CreatedAt", m.CreatedAt)
	}
	MustEqual(t, "preset CreatedAt", parts[1].CreatedAt, stored(posted))
	got, err := s.Outbound(ctx, engine.PlatformSlack, "Ev1")
	Must(t, err)
	MustEqual(t, "Outbound (ordered by part)", got, []*engine.OutboundMessage{parts[1], parts[2], parts[0]})

	replaced := &engine.OutboundMessage{Platform: engine.PlatformSlack, EventID: "Ev1", Part: 0, ChannelID: "C1", MessageID: "1700000000.000999"}
	Must(t, s.RecordOutbound(ctx, replaced))
	got, err = s.Outbound(ctx, engine.PlatformSlack, "Ev1")
	Must(t, err)
	MustEqual(t, "Outbound after replace", got, []*engine.OutboundMessage{replaced, parts[2], parts[0]})

	got, err = s.Outbound(ctx, engine.PlatformDiscord, "Ev1")
	Must(t, err)
	MustEqual(t, "Outbound of another platform", got, []*engine.OutboundMessage{parts[3]})
	got, err = s.Outbound(ctx, engine.PlatformSlack, "Ev-unknown")
	Must(t, err)
	MustEqual(t, "Outbound of an unknown event", len(got), 0)
	MustCode(t, s.RecordOutbound(ctx, &engine.OutboundMessage{Platform: engine.PlatformSlack, EventID: "Ev2"}), engine.EINVALID)
}

func ptr[T any](v T) *T { return &v }

func testPreferences(t *testing.T, s engine.Store) {
	ctx := t.Context()
	_, err := s.Preference(ctx, engine.PlatformDiscord, "U1", "assistant:C1")
	MustCode(t, err, engine.ENOTFOUND)
	tests := []struct {
		name, value string
	}{
		{"set", "ops"},
		{"replace", "Guide"},
	}
	for _, tt := range tests {
		Must(t, s.SetPreference(ctx, &engine.Preference{Platform: engine.PlatformDiscord, UserID: "U1", Key: "assistant:C1", Value: tt.value}))
		got, err := s.Preference(ctx, engine.PlatformDiscord, "U1", "assistant:C1")
		Must(t, err)
		MustEqual(t, tt.name+": value", got.Value, tt.value)
	}
	// Keys are per platform and user.
	_, err = s.Preference(ctx, engine.PlatformSlack, "U1", "assistant:C1")
	MustCode(t, err, engine.ENOTFOUND)
	_, err = s.Preference(ctx, engine.PlatformDiscord, "U2", "assistant:C1")
	MustCode(t, err, engine.ENOTFOUND)
	// An empty value deletes it.
	Must(t, s.SetPreference(ctx, &engine.Preference{Platform: engine.PlatformDiscord, UserID: "U1", Key: "assistant:C1"}))
	_, err = s.Preference(ctx, engine.PlatformDiscord, "U1", "assistant:C1")
	MustCode(t, err, engine.ENOTFOUND)
	MustCode(t, s.SetPreference(ctx, &engine.Preference{Platform: engine.PlatformDiscord, Key: "k", Value: "v"}), engine.EINVALID)
}

func testPlatformStatus(t *testing.T, s engine.Store) {
	ctx := t.Context()
	list, err := s.PlatformStatuses(ctx)
	Must(t, err)
	MustEqual(t, "statuses at first", len(list), 0)
	Must(t, s.SetPlatformStatus(ctx, &engine.PlatformStatus{Platform: engine.PlatformSlack, State: engine.StatusConnected}))
	Must(t, s.SetPlatformStatus(ctx, &engine.PlatformStatus{Platform: engine.PlatformDiscord, State: engine.StatusConnected}))
	Must(t, s.SetPlatformStatus(ctx, &engine.PlatformStatus{Platform: engine.PlatformDiscord, State: engine.StatusFailed, Detail: "close code 4004"}))
	list, err = s.PlatformStatuses(ctx)
	Must(t, err)
	if len(list) != 2 || list[0].Platform != engine.PlatformDiscord || list[0].State != engine.StatusFailed || list[0].Detail != "close code 4004" ||
		list[1].Platform != engine.PlatformSlack || list[0].UpdatedAt.IsZero() {
		t.Fatalf("statuses %+v", list)
	}
	MustCode(t, s.SetPlatformStatus(ctx, &engine.PlatformStatus{Platform: engine.PlatformSlack}), engine.EINVALID)
}

func testToolCallAudit(t *testing.T, s engine.Store) {
	ctx := t.Context()
	for i, tool := range []string{"files__read", "files__read", "web__fetch"} {
		Must(t, s.RecordToolCall(ctx, &engine.ToolCallRecord{TraceID: fmt.Sprintf("tr%d", i), AssistantID: "A1", AssistantName: "ops",
			Platform: engine.PlatformSlack, UserID: "U1", Tool: tool, ArgumentsHash: "abc", Outcome: engine.ToolOK, Duration: 1500 * time.Millisecond}))
		time.Sleep(2 * time.Millisecond)
	}
	all, err := s.ListToolCalls(ctx, engine.ToolCallFilter{})
	Must(t, err)
	if len(all) != 3 || all[0].Tool != "web__fetch" || all[0].Duration != 1500*time.Millisecond || all[0].CreatedAt.IsZero() {
		t.Fatalf("audit %+v", all)
	}
	reads, err := s.ListToolCalls(ctx, engine.ToolCallFilter{Tool: "files__read", AssistantID: "A1", Limit: 1})
	Must(t, err)
	MustEqual(t, "filtered and limited", len(reads), 1)
}

func testToolPins(t *testing.T, s engine.Store) {
	ctx := t.Context()
	Must(t, s.SetToolPin(ctx, &engine.ToolPin{Tool: "files__read", Hash: "h1", PinnedBy: "ada"}))
	Must(t, s.SetToolPin(ctx, &engine.ToolPin{Tool: "web__fetch", Hash: "h2", PinnedBy: "ada"}))
	Must(t, s.SetToolPin(ctx, &engine.ToolPin{Tool: "files__read", Hash: "h3", PinnedBy: "bob"}))
	pins, err := s.ToolPins(ctx)
	Must(t, err)
	if len(pins) != 2 || pins[0].Tool != "files__read" || pins[0].Hash != "h3" || pins[0].PinnedBy != "bob" || pins[0].PinnedAt.IsZero() {
		t.Fatalf("pins %+v", pins)
	}
	Must(t, s.DeleteToolPin(ctx, "web__fetch"))
	MustCode(t, s.DeleteToolPin(ctx, "web__fetch"), engine.ENOTFOUND)
	MustCode(t, s.SetToolPin(ctx, &engine.ToolPin{Tool: "x"}), engine.EINVALID)
}

func testToolServers(t *testing.T, s engine.Store) {
	ctx := t.Context()
	fs := &engine.ToolServer{Name: "files", Transport: "stdio", Command: "npx", Args: []string{"-y", "server"}, Env: map[string]string{"API_TOKEN": "x"}}
	Must(t, s.SaveToolServer(ctx, fs))
	Must(t, s.SaveToolServer(ctx, &engine.ToolServer{Name: "web", Transport: "http", URL: "https://t.example/mcp", Headers: map[string]string{"Authorization": "Bearer y"}}))
	fs.Args = []string{"-y", "server", "/srv"}
	Must(t, s.SaveToolServer(ctx, fs))
	list, err := s.ToolServers(ctx)
	Must(t, err)
	if len(list) != 2 || list[0].Name != "files" || len(list[0].Args) != 3 || list[0].Env["API_TOKEN"] != "x" ||
		list[1].Headers["Authorization"] != "Bearer y" || list[0].CreatedAt.IsZero() {
		t.Fatalf("servers %+v", list)
	}
	Must(t, s.DeleteToolServer(ctx, "web"))
	MustCode(t, s.DeleteToolServer(ctx, "web"), engine.ENOTFOUND)
	MustCode(t, s.SaveToolServer(ctx, &engine.ToolServer{Name: "x"}), engine.EINVALID)
}
