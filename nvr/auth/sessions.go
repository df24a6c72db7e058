package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchnvr/latch/nvr/store"
)

// ErrNoSession is returned for a token that is unknown, expired or revoked.
var ErrNoSession = errors.New("no valid session")

// TokenBytes is the session token's entropy: 256 bits.
const TokenBytes = 32

func (s *Service) newSession(ctx context.Context, tx *store.Tx, userID int64, peer string, ep endpoint, wall int64) (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	err := tx.InsertSession(ctx, store.Session{
		IDHash: store.SessionIDHash(token), UserID: userID, CreatedNS: wall, LastUsedNS: wall,
		IdleExpiresNS: wall + int64(s.idle), AbsoluteExpiresNS: wall + int64(s.abs), Peer: peer,
		UserAgent: ep.userAgent, Source: ep.source,
	})
	return token, err
}

// maxListedEndpoints bounds the other sessions an audit record or a
// notice lists.
const maxListedEndpoints = 5

// applySessionPolicy acts, under policy, on a sign-in that just created a
// session at endpoint ep, given the user's sessions that were live before
// it, in the sign-in's transaction. It reports whether it queued a notice
// that also says the device is new (newDevice), so the caller sends no
// second mail. It reads and writes sessions, the audit log and the outbox,
// never a key.
func (s *Service) applySessionPolicy(ctx context.Context, tx *store.Tx, policy SessionPolicy, u store.User, ep endpoint, before []store.Session, newDevice bool, wall int64) (bool, error) {
	at := time.Unix(0, wall).UTC().Format(time.RFC3339)
	var elsewhere []endpoint
	for _, o := range before {
		if oe := (endpoint{source: o.Source, userAgent: o.UserAgent}); oe != ep {
			elsewhere = append(elsewhere, oe)
		}
	}
	listed := func() ([]endpointJSON, string) {
		var js []endpointJSON
		var lines []string
		for i, e := range elsewhere {
			if i == maxListedEndpoints {
				lines = append(lines, fmt.Sprintf("  … and %d more", len(elsewhere)-i))
				break
			}
			js = append(js, e.json())
			lines = append(lines, "  "+e.String())
		}
		return js, strings.Join(lines, "\n")
	}
	device := ""
	if newDevice {
		device = " a new device,"
	}
	switch policy {
	case SessionsNotify:
		if len(elsewhere) == 0 {
			return false, nil
		}
		js, lines := listed()
		err := s.audit(ctx, tx, "", u.Name, ep.source, "", "concurrent_session",
			fmt.Sprintf("signed in from %s while %d other session(s) are live from other endpoints (sessions policy notify)", ep, len(elsewhere)),
			map[string]any{"endpoint": ep.json(), "others": js}, wall)
		if err != nil || u.Email == "" {
			return false, err
		}
		_, err = tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "concurrent_login", Recipient: u.Email,
			Subject: "New sign-in to your NVR while you are signed in elsewhere",
			Body: fmt.Sprintf("User %s signed in at %s from%s %s,\nwhile signed in from:\n%s\n\n"+
				"If this was not you, change your password and sign out the other sessions on the Account page.",
				u.Name, at, device, ep, lines),
			CreatedNS: wall, NextAttemptNS: wall})
		return err == nil, err
	case SessionsReplaceOldest:
		if len(before) == 0 {
			return false, nil
		}
		for _, o := range before {
			if err := tx.RevokeSession(ctx, o.IDHash, wall, "replaced by a newer sign-in (sessions policy replace-oldest)"); err != nil {
				return false, err
			}
		}
		js, lines := listed()
		err := s.audit(ctx, tx, "", u.Name, ep.source, "", "session_replaced",
			fmt.Sprintf("%d older session(s) signed out by a sign-in from %s: one session per user, the newest wins (sessions policy replace-oldest)", len(before), ep),
			map[string]any{"endpoint": ep.json(), "others": js}, wall)
		// Only an endpoint other than this one is news to the user.
		if err != nil || u.Email == "" || len(elsewhere) == 0 {
			return false, err
		}
		_, err = tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "session_replaced", Recipient: u.Email,
			Subject: "Your other NVR sessions were signed out",
			Body: fmt.Sprintf("User %s signed in at %s from%s %s,\nwhich signed out the session(s) from:\n%s\n\n"+
				"This device keeps one session per user. If this was not you, change your password.",
				u.Name, at, device, ep, lines),
			CreatedNS: wall, NextAttemptNS: wall})
		return err == nil, err
	}
	return false, nil
}

// ParseToken checks a session token's shape before any lookup: 43
// characters of unpadded base64url (256 bits).
func ParseToken(token string) error {
	if len(token) != base64.RawURLEncoding.EncodedLen(TokenBytes) {
		return fmt.Errorf("%w: malformed token", ErrNoSession)
	}
	if _, err := base64.RawURLEncoding.DecodeString(token); err != nil {
		return fmt.Errorf("%w: malformed token", ErrNoSession)
	}
	return nil
}

// Session returns the session's user if the token is valid now (not
// revoked, within idle and absolute expiry, user enabled and not expired),
// and slides the idle expiry.
func (s *Service) Session(ctx context.Context, token string) (store.User, store.Session, error) {
	if err := ParseToken(token); err != nil {
		return store.User{}, store.Session{}, err
	}
	wall := s.clk.Now().UnixNano()
	var u store.User
	var sess store.Session
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		sess, err = tx.GetSession(ctx, store.SessionIDHash(token))
		if errors.Is(err, store.ErrNotFound) {
			return ErrNoSession
		}
		if err != nil {
			return err
		}
		if sess.RevokedNS != 0 || wall >= sess.IdleExpiresNS || wall >= sess.AbsoluteExpiresNS {
			return ErrNoSession
		}
		if u, err = tx.GetUser(ctx, sess.UserID); err != nil {
			return ErrNoSession
		}
		if u.Disabled || (u.ExpiresNS != 0 && u.ExpiresNS <= wall) {
			return ErrNoSession
		}
		// Touch at most once a minute: a busy live view must not turn
		// every frame into a write.
		if wall-sess.LastUsedNS > int64(time.Minute) {
			idle := wall + int64(s.idle)
			if idle > sess.AbsoluteExpiresNS {
				idle = sess.AbsoluteExpiresNS
			}
			if err := tx.TouchSession(ctx, sess.IDHash, wall, idle); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNoSession) {
			return store.User{}, store.Session{}, ErrNoSession
		}
		return store.User{}, store.Session{}, fmt.Errorf("auth: session: %w", err)
	}
	return u, sess, nil
}

// Logout revokes one session.
func (s *Service) Logout(ctx context.Context, token string) error {
	if err := ParseToken(token); err != nil {
		return err
	}
	wall := s.clk.Now().UnixNano()
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		err := tx.RevokeSession(ctx, store.SessionIDHash(token), wall, "logout")
		if errors.Is(err, store.ErrNotFound) {
			return ErrNoSession
		}
		return err
	})
}

// RevokeSessions ends sessions of user by an actor's decision: the one
// whose id hash is idHash, or every live one when idHash is nil. It
// returns how many it ended (ErrNoSession when idHash names none of the
// user's sessions) and audits the act, so the log shows who signed whom
// out (R-AUDIT).
func (s *Service) RevokeSessions(ctx context.Context, actor Actor, user store.User, idHash []byte) (int64, error) {
	wall := s.clk.Now().UnixNano()
	reason := "revoked by " + string(actor)
	var n int64
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if idHash == nil {
			if n, err = tx.RevokeUserSessions(ctx, user.ID, wall, reason); err != nil {
				return err
			}
		} else {
			list, err := tx.ListUserSessions(ctx, user.ID)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(list, func(ss store.Session) bool { return bytes.Equal(ss.IDHash, idHash) }) {
				return ErrNoSession
			}
			if err := tx.RevokeSession(ctx, idHash, wall, reason); err != nil {
				return err
			}
			n = 1
		}
		return s.audit(ctx, tx, actor, user.Name, "", "", "session_revoked",
			fmt.Sprintf("%d session(s) ended by %s", n, actor), nil, wall)
	})
	return n, err
}
