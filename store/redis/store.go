package redis

import (
	"context"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// WithSessions returns st with its console sessions kept in s: every
// other record stays in st. Operations of st that end sessions in its own
// transaction (accepting an invitation) end them in Redis too.
func WithSessions(st engine.Store, s *Sessions) engine.Store {
	return &sessionStore{Store: st, s: s}
}

type sessionStore struct {
	engine.Store
	s *Sessions
}

// CreateSession checks the user exists, like the relational stores do.
func (w *sessionStore) CreateSession(ctx context.Context, sess *engine.Session) error {
	if sess.UserID != "" {
		if _, err := w.Store.UserByID(ctx, sess.UserID); err != nil {
			return err
		}
	}
	return w.s.CreateSession(ctx, sess)
}

func (w *sessionStore) SessionByTokenHash(ctx context.Context, hash string) (*engine.Session, error) {
	return w.s.SessionByTokenHash(ctx, hash)
}

func (w *sessionStore) DeleteSession(ctx context.Context, id string) error {
	return w.s.DeleteSession(ctx, id)
}

func (w *sessionStore) DeleteUserSessions(ctx context.Context, userID string) error {
	return w.s.DeleteUserSessions(ctx, userID)
}

func (w *sessionStore) TouchSession(ctx context.Context, id string, at time.Time) error {
	return w.s.TouchSession(ctx, id, at)
}

func (w *sessionStore) PurgeSessions(ctx context.Context, idleSince time.Time) (int, error) {
	return w.s.PurgeSessions(ctx, idleSince)
}

// AcceptInvitation sets the password in st and ends the user's sessions
// here too.
func (w *sessionStore) AcceptInvitation(ctx context.Context, id, passwordHash string, at time.Time) error {
	open, err := w.Store.ListInvitations(ctx) // the usable ones
	if err != nil {
		return err
	}
	if err := w.Store.AcceptInvitation(ctx, id, passwordHash, at); err != nil {
		return err
	}
	for _, inv := range open {
		if inv.ID == id {
			return w.s.DeleteUserSessions(ctx, inv.UserID)
		}
	}
	return nil
}
