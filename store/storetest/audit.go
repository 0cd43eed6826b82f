package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// auditIDs returns the ids of entries, in order.
func auditIDs(list []*engine.AuditEntry) []string {
	ids := []string{}
	for _, e := range list {
		ids = append(ids, e.ID)
	}
	return ids
}

func testAudit(t *testing.T, s engine.Store) {
	ctx := t.Context()

	// A recorded entry gets an id and a time, and comes back whole.
	e := &engine.AuditEntry{ActorID: "u1", ActorName: "ada", Action: "assistant.update", Target: "A1",
		Detail: "via API token \"ci\"", Status: 200, IP: "192.0.2.1", UserAgent: "curl/8.5"}
	Must(t, s.RecordAudit(ctx, e))
	if len(e.ID) != 26 {
		t.Fatalf("id = %q, want a generated 26-character id", e.ID)
	}
	mustStoredTime(t, "At", e.At)
	if d := time.Since(e.At); d < 0 || d > time.Minute {
		t.Fatalf("At = %v, want about now", e.At)
	}
	list, err := s.ListAudit(ctx, engine.AuditFilter{})
	Must(t, err)
	MustEqual(t, "listed entries", list, []*engine.AuditEntry{e})

	// An explicit time and id are kept; times are stored in UTC to the microsecond.
	at := time.Date(2025, 3, 4, 5, 6, 7, 891011213, time.FixedZone("CET", 3600))
	e2 := &engine.AuditEntry{ID: "explicit", At: at, Action: "auth.login_failed", ActorName: "mallory", Status: 401}
	Must(t, s.RecordAudit(ctx, e2))
	MustEqual(t, "stored time", e2.At, stored(at))
	list, err = s.ListAudit(ctx, engine.AuditFilter{ActionPrefix: "auth."})
	Must(t, err)
	MustEqual(t, "entry with an explicit time", list, []*engine.AuditEntry{{ID: "explicit", At: stored(at), ActorName: "mallory",
		Action: "auth.login_failed", Status: 401}})
}

func testAuditValidation(t *testing.T, s engine.Store) {
	ctx := t.Context()
	MustCode(t, s.RecordAudit(ctx, &engine.AuditEntry{Status: 200}), engine.EINVALID)
	MustCode(t, s.RecordAudit(ctx, &engine.AuditEntry{Action: "  \x00 ", Status: 200}), engine.EINVALID)
	MustCode(t, s.RecordAudit(ctx, &engine.AuditEntry{Action: "x", Status: -1}), engine.EINVALID)

	// Text is cleaned and cut rather than refused: an audit entry must not
	// be lost because a client sent odd bytes.
	e := &engine.AuditEntry{Action: "auth.login_failed", ActorName: "a\x00b\nc\xff", Target: strings.Repeat("t", 600),
		UserAgent: strings.Repeat("é", 300), Detail: "<script>alert(1)</script>", Status: 401}
	Must(t, s.RecordAudit(ctx, e))
	list, err := s.ListAudit(ctx, engine.AuditFilter{})
	Must(t, err)
	if len(list) != 1 {
		t.Fatalf("entries = %d, want 1", len(list))
	}
	got := list[0]
	MustEqual(t, "actor name", got.ActorName, "a b c\uFFFD")
	MustEqual(t, "target length", len([]rune(got.Target)), engine.AuditMaxTarget)
	MustEqual(t, "user agent length", len([]rune(got.UserAgent)), engine.AuditMaxUserAgent)
	if !strings.HasSuffix(got.UserAgent, "…") {
		t.Fatalf("a cut user agent ends with %q, want an ellipsis", got.UserAgent[len(got.UserAgent)-3:])
	}
	MustEqual(t, "detail (stored as is; escaping is the page's job)", got.Detail, "<script>alert(1)</script>")
	MustEqual(t, "listed entry", got, e)
}

func testListAudit(t *testing.T, s engine.Store) {
	ctx := t.Context()
	day := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	created := []struct {
		id, actorID, actor, action, target string
		status                             int
		at                                 time.Duration
	}{
		{"a01", "u-ada", "ada", "auth.login", "", 303, 1 * time.Hour},
		{"a02", "", "Mallory", "auth.login_failed", "", 401, 2 * time.Hour},
		{"a03", "u-ada", "ada", "assistant.create", "ASSIST-1", 201, 3 * time.Hour},
		{"a04", "u-bob", "bob", "assistant.update", "assist-1", 403, 4 * time.Hour},
		{"a05", "u-ada", "ada", "knowledge_base.delete", "handbook", 200, 24 * time.Hour},
		{"a06a", "u-ada", "ada", "document.delete", "handbook/d1", 200, 25 * time.Hour}, // two at the same time: by id, descending
		{"a06b", "u-bob", "bob", "document.upload", "handbook", 409, 25 * time.Hour},
		{"a07", "u-ada", "ada", "tool.enable", "files__read", 200, 48 * time.Hour},
		{"a08", "u-ada", "ada", "assistants.x", "", 200, 49 * time.Hour},
	}
	for _, c := range created {
		Must(t, s.RecordAudit(ctx, &engine.AuditEntry{ID: c.id, At: day.Add(c.at), ActorID: c.actorID, ActorName: c.actor,
			Action: c.action, Target: c.target, Status: c.status, IP: "192.0.2.7"}))
	}
	all := []string{"a08", "a07", "a06b", "a06a", "a05", "a04", "a03", "a02", "a01"}
	tests := []struct {
		name   string
		filter engine.AuditFilter
		want   []string
	}{
		{"all, newest first", engine.AuditFilter{}, all},
		{"negative limit and offset are the defaults", engine.AuditFilter{Limit: -1, Offset: -5}, all},
		{"first page", engine.AuditFilter{Limit: 3}, []string{"a08", "a07", "a06b"}},
		{"second page", engine.AuditFilter{Limit: 3, Offset: 3}, []string{"a06a", "a05", "a04"}},
		{"last page", engine.AuditFilter{Limit: 3, Offset: 6}, []string{"a03", "a02", "a01"}},
		{"past the end", engine.AuditFilter{Limit: 3, Offset: 9}, []string{}},
		{"keyset: after a06b", engine.AuditFilter{BeforeAt: day.Add(25 * time.Hour), BeforeID: "a06b", Limit: 3}, []string{"a06a", "a05", "a04"}},
		{"keyset: after a06a", engine.AuditFilter{BeforeAt: day.Add(25 * time.Hour), BeforeID: "a06a"}, []string{"a05", "a04", "a03", "a02", "a01"}},
		{"actor by name", engine.AuditFilter{Actor: "bob"}, []string{"a06b", "a04"}},
		{"actor by name, any case", engine.AuditFilter{Actor: "mallory"}, []string{"a02"}},
		{"actor by id", engine.AuditFilter{Actor: "u-bob"}, []string{"a06b", "a04"}},
		{"actor: whole names only", engine.AuditFilter{Actor: "ad"}, []string{}},
		{"action prefix", engine.AuditFilter{ActionPrefix: "assistant."}, []string{"a04", "a03"}},
		{"action prefix without the dot", engine.AuditFilter{ActionPrefix: "auth.login"}, []string{"a02", "a01"}},
		{"whole action", engine.AuditFilter{ActionPrefix: "auth.login_failed"}, []string{"a02"}},
		{"action prefix is case-sensitive", engine.AuditFilter{ActionPrefix: "Auth."}, []string{}},
		{"action prefix is no pattern", engine.AuditFilter{ActionPrefix: "%"}, []string{}},
		{"target contains, any case", engine.AuditFilter{Target: "assist-1"}, []string{"a04", "a03"}},
		{"target part", engine.AuditFilter{Target: "book"}, []string{"a06b", "a06a", "a05"}},
		{"target is no pattern", engine.AuditFilter{Target: "_"}, []string{"a07"}},
		{"failures only", engine.AuditFilter{FailuresOnly: true}, []string{"a06b", "a04", "a02"}},
		{"since (inclusive)", engine.AuditFilter{Since: day.Add(25 * time.Hour)}, []string{"a08", "a07", "a06b", "a06a"}},
		{"until (exclusive)", engine.AuditFilter{Until: day.Add(24 * time.Hour)}, []string{"a04", "a03", "a02", "a01"}},
		{"one day", engine.AuditFilter{Since: day.Add(24 * time.Hour), Until: day.Add(48 * time.Hour)}, []string{"a06b", "a06a", "a05"}},
		{"times in another zone", engine.AuditFilter{Since: day.Add(24 * time.Hour).In(time.FixedZone("EST", -5*3600))}, []string{"a08", "a07", "a06b", "a06a", "a05"}},
		{"all filters", engine.AuditFilter{Actor: "ADA", ActionPrefix: "document.", Target: "handbook", Since: day, Until: day.Add(72 * time.Hour)}, []string{"a06a"}},
		{"filters and paging", engine.AuditFilter{Actor: "ada", Limit: 2, Offset: 2}, []string{"a06a", "a05"}},
		{"injection attempt", engine.AuditFilter{Actor: "' OR 1=1 --", Target: "'; DROP TABLE audit_log; --"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.ListAudit(ctx, tt.filter)
			Must(t, err)
			MustEqual(t, "ListAudit", auditIDs(list), tt.want)
		})
	}
	list, err := s.ListAudit(ctx, engine.AuditFilter{})
	Must(t, err)
	MustEqual(t, "entries after the injection attempts", len(list), len(all))
}

func testListAuditDefaultLimit(t *testing.T, s engine.Store) {
	ctx := t.Context()
	for i := range engine.DefaultAuditLimit + 1 {
		Must(t, s.RecordAudit(ctx, &engine.AuditEntry{ID: fmt.Sprintf("e%03d", i), Action: "tool.enable", Status: 200}))
	}
	list, err := s.ListAudit(ctx, engine.AuditFilter{})
	Must(t, err)
	MustEqual(t, "entries listed by default", len(list), engine.DefaultAuditLimit)
}
