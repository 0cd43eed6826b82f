package redis

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convosphere/convosphere/engine"
)

// Sessions keeps console sessions in Redis, so every console replica sees
// a sign-in and a sign-out at once. Layout (under the prefix):
//
//	session:h:<token hash>  hash of id, user_id, created_at, expires_at, last_seen_at
//	session:id:<id>         the token hash
//	session:user:<user id>  set of the user's session ids
//	session:seen            sorted set: id → last seen (unix ms), for PurgeSessions
//	session:exp             sorted set: id → expiry (unix ms)
//
// Keys expire with the session, so Redis drops abandoned ones itself.
type Sessions struct{ c *Client }

// Sessions returns the session store of c.
func (c *Client) Sessions() *Sessions { return &Sessions{c: c} }

// createSession stores a session unless its token hash is taken.
var createSession = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'user_id', ARGV[2], 'created_at', ARGV[3], 'expires_at', ARGV[4], 'last_seen_at', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[6], 'PXAT', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[3]) < tonumber(ARGV[5]) then redis.call('PEXPIREAT', KEYS[3], ARGV[5]) end
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[8], ARGV[1])
return 1`)

// CreateSession implements engine.UserStore (the user is not checked:
// WithSessions does that against the relational store).
func (s *Sessions) CreateSession(ctx context.Context, sess *engine.Session) error {
	if sess.UserID == "" || sess.TokenHash == "" || sess.ExpiresAt.IsZero() {
		return engine.Errorf(engine.EINVALID, "session: user, token hash and expiry are required")
	}
	if sess.ID == "" {
		sess.ID = engine.NewID()
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = time.Now()
	}
	sess.CreatedAt = engine.StoredTime(sess.CreatedAt)
	sess.ExpiresAt = engine.StoredTime(sess.ExpiresAt)
	sess.LastSeenAt = sess.CreatedAt
	// Keep the records a little past the expiry (at least a minute from
	// now), so PurgeSessions can still count and index them.
	keep := sess.ExpiresAt
	if soon := time.Now().Add(time.Minute); keep.Before(soon) {
		keep = soon
	}
	c := s.c
	ok, err := createSession.Run(ctx, c.rdb,
		[]string{c.key("session", "h", sess.TokenHash), c.key("session", "id", sess.ID), c.key("session", "user", sess.UserID),
			c.key("session", "seen"), c.key("session", "exp")},
		sess.ID, sess.UserID, enc(sess.CreatedAt), enc(sess.ExpiresAt), keep.UnixMilli(), sess.TokenHash,
		sess.CreatedAt.UnixMilli(), sess.ExpiresAt.UnixMilli()).Int()
	if err != nil {
		return unavailable(err, "create session")
	}
	if ok == 0 {
		return engine.Errorf(engine.ECONFLICT, "session: token hash already in use")
	}
	return nil
}

// SessionByTokenHash implements engine.UserStore.
func (s *Sessions) SessionByTokenHash(ctx context.Context, hash string) (*engine.Session, error) {
	m, err := s.c.rdb.HGetAll(ctx, s.c.key("session", "h", hash)).Result()
	if err != nil {
		return nil, unavailable(err, "read session")
	}
	sess, ok := decodeSession(m, hash)
	if !ok || !sess.ExpiresAt.After(time.Now()) {
		return nil, engine.Errorf(engine.ENOTFOUND, "session not found")
	}
	return sess, nil
}

// touchSession sets last_seen_at when the session still exists.
var touchSession = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1`)

// TouchSession implements engine.UserStore.
func (s *Sessions) TouchSession(ctx context.Context, id string, at time.Time) error {
	hash, err := s.hashOf(ctx, id)
	if err != nil {
		return err
	}
	at = engine.StoredTime(at)
	ok, err := touchSession.Run(ctx, s.c.rdb, []string{s.c.key("session", "h", hash), s.c.key("session", "seen")},
		enc(at), at.UnixMilli(), id).Int()
	if err != nil {
		return unavailable(err, "touch session")
	}
	if ok == 0 {
		return engine.Errorf(engine.ENOTFOUND, "session not found")
	}
	return nil
}

// DeleteSession implements engine.UserStore.
func (s *Sessions) DeleteSession(ctx context.Context, id string) error {
	hash, err := s.hashOf(ctx, id)
	if err != nil {
		return err
	}
	n, err := s.remove(ctx, id, hash, "")
	if err != nil {
		return err
	}
	if n == 0 {
		return engine.Errorf(engine.ENOTFOUND, "session not found")
	}
	return nil
}

// DeleteUserSessions implements engine.UserStore.
func (s *Sessions) DeleteUserSessions(ctx context.Context, userID string) error {
	ids, err := s.c.rdb.SMembers(ctx, s.c.key("session", "user", userID)).Result()
	if err != nil {
		return unavailable(err, "list user sessions")
	}
	for _, id := range ids {
		hash, err := s.hashOf(ctx, id)
		if engine.IsNotFound(err) {
			hash = ""
		} else if err != nil {
			return err
		}
		if _, err := s.remove(ctx, id, hash, userID); err != nil {
			return err
		}
	}
	return nil
}

// PurgeSessions implements engine.UserStore: it removes the sessions that
// expired or were last used before idleSince, and counts them.
func (s *Sessions) PurgeSessions(ctx context.Context, idleSince time.Time) (int, error) {
	c := s.c
	idle, err := c.rdb.ZRangeByScore(ctx, c.key("session", "seen"), &goredis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatInt(idleSince.UnixMilli(), 10)}).Result()
	if err != nil {
		return 0, unavailable(err, "list idle sessions")
	}
	expired, err := c.rdb.ZRangeByScore(ctx, c.key("session", "exp"), &goredis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(time.Now().UnixMilli(), 10)}).Result()
	if err != nil {
		return 0, unavailable(err, "list expired sessions")
	}
	n := 0
	seen := map[string]bool{}
	for _, id := range append(idle, expired...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		hash, err := s.hashOf(ctx, id)
		if engine.IsNotFound(err) {
			hash = ""
		} else if err != nil {
			return n, err
		}
		removed, err := s.remove(ctx, id, hash, "")
		if err != nil {
			return n, err
		}
		n += removed
	}
	return n, nil
}

// hashOf returns the token hash of session id.
func (s *Sessions) hashOf(ctx context.Context, id string) (string, error) {
	hash, err := s.c.rdb.Get(ctx, s.c.key("session", "id", id)).Result()
	if isNil(err) {
		return "", engine.Errorf(engine.ENOTFOUND, "session not found")
	}
	if err != nil {
		return "", unavailable(err, "read session")
	}
	return hash, nil
}

// remove deletes session id's records and reports whether it was indexed
// (1) or already gone (0). userID may be empty: it is read from the record.
func (s *Sessions) remove(ctx context.Context, id, hash, userID string) (int, error) {
	c := s.c
	if userID == "" && hash != "" {
		u, err := c.rdb.HGet(ctx, c.key("session", "h", hash), "user_id").Result()
		if err != nil && !isNil(err) {
			return 0, unavailable(err, "read session")
		}
		userID = u
	}
	var zrem *goredis.IntCmd
	_, err := c.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		if hash != "" {
			p.Del(ctx, c.key("session", "h", hash))
		}
		p.Del(ctx, c.key("session", "id", id))
		if userID != "" {
			p.SRem(ctx, c.key("session", "user", userID), id)
		}
		zrem = p.ZRem(ctx, c.key("session", "seen"), id)
		p.ZRem(ctx, c.key("session", "exp"), id)
		return nil
	})
	if err != nil {
		return 0, unavailable(err, "delete session")
	}
	return int(zrem.Val()), nil
}

func enc(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

func dec(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(n).UTC(), true
}

func decodeSession(m map[string]string, hash string) (*engine.Session, bool) {
	sess := &engine.Session{ID: m["id"], UserID: m["user_id"], TokenHash: hash}
	var ok1, ok2, ok3 bool
	sess.CreatedAt, ok1 = dec(m["created_at"])
	sess.ExpiresAt, ok2 = dec(m["expires_at"])
	sess.LastSeenAt, ok3 = dec(m["last_seen_at"])
	return sess, sess.ID != "" && sess.UserID != "" && ok1 && ok2 && ok3
}
