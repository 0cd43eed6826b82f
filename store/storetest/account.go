package storetest

import (
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

func testInvitations(t *testing.T, s engine.Store) {
	ctx := t.Context()
	ada, bob := mustUser(t, s, "ada"), mustUser(t, s, "bob")
	list, err := s.ListInvitations(ctx)
	Must(t, err)
	MustEqual(t, "invitations in an empty store", len(list), 0)

	// Creating fills in the ID, the times and a default expiry.
	before := time.Now()
	first := &engine.Invitation{UserID: ada.ID, TokenHash: "hash-1", CreatedBy: bob.ID}
	Must(t, s.CreateInvitation(ctx, first))
	if first.ID == "" {
		t.Fatal("CreateInvitation left ID empty")
	}
	mustStoredTime(t, "CreatedAt", first.CreatedAt)
	mustStoredTime(t, "ExpiresAt", first.ExpiresAt)
	if d := first.ExpiresAt.Sub(first.CreatedAt); d != engine.InvitationTTL {
		t.Fatalf("default validity = %s, want %s", d, engine.InvitationTTL)
	}
	if first.CreatedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("CreatedAt %v is not now", first.CreatedAt)
	}
	got, err := s.InvitationByTokenHash(ctx, "hash-1")
	Must(t, err)
	MustEqual(t, "InvitationByTokenHash", got, first)
	MustEqual(t, "state", got.State(time.Now()), engine.InvitationPending)

	// A second invitation of the same user replaces the first.
	second := &engine.Invitation{UserID: ada.ID, TokenHash: "hash-2", ExpiresAt: time.Now().Add(time.Hour)}
	Must(t, s.CreateInvitation(ctx, second))
	_, err = s.InvitationByTokenHash(ctx, "hash-1")
	MustCode(t, err, engine.ENOTFOUND)
	bobs := &engine.Invitation{UserID: bob.ID, TokenHash: "hash-3"}
	Must(t, s.CreateInvitation(ctx, bobs))
	list, err = s.ListInvitations(ctx)
	Must(t, err)
	MustEqual(t, "ListInvitations (newest first)", list, []*engine.Invitation{bobs, second})

	errs := []struct {
		name string
		inv  engine.Invitation
		code string
	}{
		{"unknown user", engine.Invitation{UserID: "no-such-user", TokenHash: "hash-9"}, engine.ENOTFOUND},
		{"no user", engine.Invitation{TokenHash: "hash-8"}, engine.EINVALID},
		{"no hash", engine.Invitation{UserID: bob.ID}, engine.EINVALID},
		{"same hash", engine.Invitation{UserID: ada.ID, TokenHash: "hash-3"}, engine.ECONFLICT},
	}
	for _, tt := range errs {
		t.Run("create "+tt.name, func(t *testing.T) {
			inv := tt.inv
			MustCode(t, s.CreateInvitation(ctx, &inv), tt.code)
		})
	}
	// A failed creation keeps the user's invitation.
	_, err = s.InvitationByTokenHash(ctx, "hash-2")
	Must(t, err)

	// Accepting sets the password, ends the sessions and uses the link up.
	sess := &engine.Session{UserID: ada.ID, TokenHash: "sess-ada", ExpiresAt: time.Now().Add(time.Hour)}
	Must(t, s.CreateSession(ctx, sess))
	at := time.Now()
	Must(t, s.AcceptInvitation(ctx, second.ID, "new-hash", at))
	u, err := s.UserByID(ctx, ada.ID)
	Must(t, err)
	MustEqual(t, "password hash", u.PasswordHash, "new-hash")
	_, err = s.SessionByTokenHash(ctx, "sess-ada")
	MustCode(t, err, engine.ENOTFOUND)
	got, err = s.InvitationByTokenHash(ctx, "hash-2")
	Must(t, err)
	MustEqual(t, "UsedAt", got.UsedAt, stored(at))
	MustEqual(t, "state", got.State(time.Now()), engine.InvitationUsed)
	list, err = s.ListInvitations(ctx)
	Must(t, err)
	MustEqual(t, "ListInvitations leaves used ones out", list, []*engine.Invitation{bobs})

	// A used invitation cannot be used again, nor an expired one.
	MustCode(t, s.AcceptInvitation(ctx, second.ID, "other-hash", time.Now()), engine.ECONFLICT)
	MustCode(t, s.AcceptInvitation(ctx, bobs.ID, "bob-hash", bobs.ExpiresAt.Add(time.Second)), engine.ECONFLICT)
	MustCode(t, s.AcceptInvitation(ctx, "no-such-invitation", "x", time.Now()), engine.ENOTFOUND)
	MustCode(t, s.AcceptInvitation(ctx, bobs.ID, "", time.Now()), engine.EINVALID)
	u, err = s.UserByID(ctx, ada.ID)
	Must(t, err)
	MustEqual(t, "password hash after a refused reuse", u.PasswordHash, "new-hash")
	u, err = s.UserByID(ctx, bob.ID)
	Must(t, err)
	MustEqual(t, "password hash after refused acceptances", u.PasswordHash, "")
	got, err = s.InvitationByTokenHash(ctx, "hash-3")
	Must(t, err)
	MustEqual(t, "state of an expired invitation", got.State(bobs.ExpiresAt), engine.InvitationExpired)

	// A used invitation is kept when a new one is made.
	Must(t, s.CreateInvitation(ctx, &engine.Invitation{UserID: ada.ID, TokenHash: "hash-4"}))
	_, err = s.InvitationByTokenHash(ctx, "hash-2")
	Must(t, err)
}

func testSignIns(t *testing.T, s engine.Store) {
	ctx := t.Context()
	ada, bob := mustUser(t, s, "ada"), mustUser(t, s, "bob")
	m, err := s.LastSignIns(ctx)
	Must(t, err)
	MustEqual(t, "sign-ins in an empty store", len(m), 0)

	t1 := time.Now().Add(-time.Hour)
	t2 := time.Now()
	Must(t, s.RecordSignIn(ctx, ada.ID, t1))
	Must(t, s.RecordSignIn(ctx, ada.ID, t2))
	Must(t, s.RecordSignIn(ctx, bob.ID, t1))
	MustCode(t, s.RecordSignIn(ctx, "no-such-user", t1), engine.ENOTFOUND)
	m, err = s.LastSignIns(ctx)
	Must(t, err)
	MustEqual(t, "LastSignIns", m, map[string]time.Time{ada.ID: stored(t2), bob.ID: stored(t1)})
}
