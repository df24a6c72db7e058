package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/latchnvr/latch/nvr/store"
)

// ErrNoSession is returned for a token that is unknown, expired or revoked.
var ErrNoSession = errors.New("no valid session")

// TokenBytes is the session token's entropy: 256 bits.
const TokenBytes = 32

func (s *Service) newSession(ctx context.Context, tx *store.Tx, userID int64, peer, ua string, wall int64) (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	if len(ua) > 256 {
		ua = ua[:256]
	}
	err := tx.InsertSession(ctx, store.Session{
		IDHash: store.SessionIDHash(token), UserID: userID, CreatedNS: wall, LastUsedNS: wall,
		IdleExpiresNS: wall + int64(s.idle), AbsoluteExpiresNS: wall + int64(s.abs), Peer: peer, UserAgent: ua,
	})
	return token, err
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
