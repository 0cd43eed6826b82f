package engine

import (
	"context"
	"time"
)

// InvitationTTL is how long an invitation link works.
const InvitationTTL = 7 * 24 * time.Hour

// Invitation lets one console user choose a password, once: a user an
// admin invited, or one an admin sent a new link (a lost link, a forgotten
// password). Only the hash of its token is stored; the link is shown once,
// to the admin who made it.
type Invitation struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	TokenHash string    `json:"-"`
	CreatedBy string    `json:"created_by"` // the id of the admin who made it
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// Invitation states, as Invitation.State reports them.
const (
	InvitationPending = "pending"
	InvitationUsed    = "used"
	InvitationExpired = "expired"
)

// State says whether inv can still be used at now: pending, used or expired.
func (inv *Invitation) State(now time.Time) string {
	switch {
	case !inv.UsedAt.IsZero():
		return InvitationUsed
	case !now.Before(inv.ExpiresAt):
		return InvitationExpired
	}
	return InvitationPending
}

// Normalize validates inv and fills in what a store sets when it creates
// inv: an empty ID, CreatedAt (now), ExpiresAt (now + InvitationTTL when
// zero) and the times as stored.
func (inv *Invitation) Normalize(now time.Time) error {
	if inv.UserID == "" || inv.TokenHash == "" {
		return Errorf(EINVALID, "An invitation needs a user and a token hash.")
	}
	setID(&inv.ID)
	inv.CreatedAt = StoredTime(now)
	if inv.ExpiresAt.IsZero() {
		inv.ExpiresAt = now.Add(InvitationTTL)
	}
	inv.ExpiresAt = StoredTime(inv.ExpiresAt)
	inv.UsedAt = StoredTime(inv.UsedAt)
	return nil
}

// AccountStore keeps what the console needs to manage accounts besides the
// users themselves: invitation links and when each user last signed in.
type AccountStore interface {
	// CreateInvitation stores inv (see Invitation.Normalize) and, in the
	// same transaction, deletes the user's other unused invitations, so
	// that only the newest link works; ENOTFOUND when the user does not
	// exist.
	CreateInvitation(ctx context.Context, inv *Invitation) error
	// InvitationByTokenHash returns the invitation with the token hash,
	// used and expired ones too; ENOTFOUND when there is none.
	InvitationByTokenHash(ctx context.Context, hash string) (*Invitation, error)
	// ListInvitations lists the unused invitations, expired ones too,
	// newest first.
	ListInvitations(ctx context.Context) ([]*Invitation, error)
	// AcceptInvitation uses an invitation: in one transaction it marks it
	// used at at, sets its user's password hash and deletes the user's
	// sessions. ECONFLICT when it was used already or has expired by at;
	// ENOTFOUND when there is none.
	AcceptInvitation(ctx context.Context, id, passwordHash string, at time.Time) error

	// RecordSignIn records that the user signed in at at, replacing the
	// earlier time; ENOTFOUND when the user does not exist.
	RecordSignIn(ctx context.Context, userID string, at time.Time) error
	// LastSignIns returns when each user who ever signed in last did, by
	// user id.
	LastSignIns(ctx context.Context) (map[string]time.Time, error)
}
