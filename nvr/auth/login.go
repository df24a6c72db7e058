package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

// Attempt is one login attempt as the web layer or the console hands it in.
type Attempt struct {
	Username string
	Secret   string
	// TOTP is the second factor, if the client sent one: the
	// authenticator's 6 digits, or one of the user's recovery codes.
	TOTP    string
	Source  model.Source // zero for the console
	Channel model.Channel
	// Peer and UserAgent are recorded on the session.
	Peer, UserAgent string
	// NoSession skips creating a session (console commands that only
	// authenticate an act).
	NoSession bool
}

// Result is the answer to an attempt.
type Result struct {
	Decision  model.Decision
	Principal model.Principal
	// DecidedAt is the instant both phases decided at.
	DecidedAt model.Instant
	// TOTPRequired: the password was right but the second factor is
	// missing; nothing was recorded beyond the time that passed.
	TOTPRequired bool
	// Set when the attempt was allowed.
	User               store.User
	Token              string
	MustChangePassword bool
}

// MaxSecretBytes bounds a password or PIN: argon2 would hash anything, and
// a megabyte password is a denial-of-service vector, not a password.
const MaxSecretBytes = 1024

// maxRetries bounds decide-again loops when another process (the console)
// changes a key between read and commit.
const maxRetries = 8

type verification struct {
	done    bool
	outcome model.Outcome
	needOTP bool
}

// Login decides one attempt (SPEC §3): both phases under the principal's
// and the source's stripes, the secret verified only when admitted, and the
// keys, the audit records, notifications and the session committed in one
// transaction (R-ATOMIC), shared with concurrent attempts (group commit).
//
// A refusal that changes no key (the common case under a flood: the pair
// is locked, nothing extends, nothing expires) writes only its audit count,
// so it gives up its stripes before waiting for its commit: it read and
// decided with the stripes held, and it has nothing for a later attempt to
// read. It still answers only after the commit.
func (s *Service) Login(ctx context.Context, a Attempt) (Result, error) {
	pr, err := model.CanonicalPrincipal(a.Username)
	if err != nil {
		return Result{}, fmt.Errorf("%w: username: %v", ErrInvalidInput, err)
	}
	if len(a.Secret) > MaxSecretBytes {
		return Result{}, fmt.Errorf("%w: password longer than %d bytes", ErrInvalidInput, MaxSecretBytes)
	}
	if a.Channel == model.Remote && a.Source.IsZero() {
		return Result{}, fmt.Errorf("%w: a remote attempt needs a source", ErrInvalidInput)
	}
	if a.Channel == model.Console {
		a.Source = model.Source{}
	}
	src := ""
	if !a.Source.IsZero() {
		src = a.Source.String()
	}
	var unlock func()
	held := false
	defer func() {
		if held {
			unlock()
		}
	}()
	// Writes run inside a batch another caller may lead: never cancelled
	// half-way by this caller's context.
	wctx := context.WithoutCancel(ctx)
	ids := keyIDs(pr, a.Source)
	cache := s.attemptCache()
	var (
		ver      verification
		user     store.User
		haveUser bool
	)
	// What the commit closures need lives in lc, one object from a pool:
	// they escape (the committer may run them on another goroutine), and so
	// would every variable they captured; at several kilobytes (the keys'
	// views, twice), allocating it per attempt was a third of the
	// allocated bytes. Nothing keeps it once Login returns: the committer
	// drops its closures when do returns, and the cache copies what it puts.
	lc := loginCommits.Get().(*loginCommit)
	*lc = loginCommit{s: s, ctx: wctx, cache: cache, pr: pr, a: a, ids: ids}
	defer loginCommits.Put(lc)
	for try := 0; try < maxRetries; try++ {
		if !held {
			// Again after a refusal that gave its stripes up and must
			// decide again (its cached keys were stale).
			unlock, held = s.lockKeys(pr, a.Source), true
		}
		now, wall := model.Instant(s.clk.Instant()), s.clk.Now().UnixNano()
		stored, urow, tag, err := s.readKeys(ctx, cache, &ids, pr, src)
		if err != nil {
			return Result{}, err
		}
		var l loaded
		for k := model.Kind(0); k < model.NumKinds; k++ {
			if ids[k].Kind != "" {
				l.set(k, s.fromStored(ids[k], stored[k], now, wall))
			}
		}
		known := urow.known
		role := model.RoleViewer
		if known {
			role = roleOf(urow.role)
		}
		l.view.Principal.Disabled = known && (urow.disabled || (urow.expiresNS != 0 && urow.expiresNS <= wall))
		p := s.Policy()
		// The fingerprint is a MAC of the secret: computed only once the
		// attempt is admitted (R-NOORACLE: a refusal spends no work on it).
		att := model.Attempt{Channel: a.Channel, Role: role}
		v, d := model.Admit(l.view, att, now, &p)
		res := Result{Principal: pr, DecidedAt: now, Decision: d}
		if d.Verdict == model.Refused && !viewNeedsWrite(ids, &l, v) {
			rec, bucket := s.refusalRecord(pr, a.Channel, src, d, now, wall)
			held = false
			unlock()
			lc.tag, lc.rec, lc.bucket = tag, rec, bucket
			err := s.commit.do(lc.refusal)
			if err != nil {
				return Result{}, fmt.Errorf("auth: login: audit: %w", err)
			}
			if lc.stale {
				continue
			}
			return res, nil
		}
		if d.Verdict == model.Admitted {
			if !haveUser && known {
				if user, err = s.db.GetUserByName(ctx, string(pr)); err != nil && !errors.Is(err, store.ErrNotFound) {
					return Result{}, fmt.Errorf("auth: login: %w", err)
				}
				haveUser = err == nil
			}
			if known != haveUser || (known && (roleOf(user.Role) != role || user.Disabled != urow.disabled || user.ExpiresNS != urow.expiresNS)) {
				// The user changed between the two reads: decide again.
				haveUser = false
				if cache != nil {
					cache.dropUser(pr)
				}
				continue
			}
			if !ver.done {
				// Phase two's expensive part, still holding the stripes:
				// parallel attempts on this principal wait, never fail.
				if ver, err = s.verify(ctx, user, known, a, wall); err != nil {
					return Result{}, err
				}
			}
			if ver.needOTP {
				res.TOTPRequired = true
			} else {
				att.Print = model.Fingerprint(*s.deviceKey.Load(), a.Secret)
				v, d = model.Record(v, att, ver.outcome, now, &p)
				res.Decision = d
			}
		}
		var putTag cacheTag
		if cache != nil {
			putTag = cache.tag()
		}
		lc.tag, lc.l, lc.v, lc.d, lc.res, lc.user, lc.known, lc.now, lc.wall = tag, l, v, d, res, user, known, now, wall
		err = s.commit.do(lc.write)
		if cache != nil {
			if err == nil && !lc.stale {
				// Still under the stripes of every key written.
				cache.put(putTag, &ids, &lc.written)
			} else {
				cache.drop(&ids)
			}
		}
		if lc.stale || errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("auth: login: %w", err)
		}
		return lc.res, nil
	}
	return Result{}, fmt.Errorf("auth: login: %w after %d tries", errStale, maxRetries)
}

var loginCommits = sync.Pool{New: func() any { return new(loginCommit) }}

// loginCommit is one attempt's commit: what Login hands the committer,
// for a refusal that writes only its audit count (refusal) or for
// everything else (write).
type loginCommit struct {
	s     *Service
	ctx   context.Context // never cancelled: the batch may be another caller's
	cache *keyCache
	tag   cacheTag
	// stale: the keys came from the cache, and the batch learned that
	// another process wrote meanwhile (keyCache): nothing was written;
	// decide again from SQLite.
	stale bool

	pr  model.Principal
	a   Attempt
	ids [model.NumKinds]store.KeyID

	// refusal
	rec    store.AuditRecord
	bucket int64

	// write
	l       loaded
	v       model.View
	d       model.Decision
	res     Result
	user    store.User
	known   bool
	now     model.Instant
	wall    int64
	written writtenKeys
}

func (c *loginCommit) refusal(tx *store.Tx) error {
	if c.stale = !c.cache.fresh(c.tag); c.stale {
		return nil
	}
	_, _, err := tx.AppendOrAggregateRefusal(c.ctx, c.rec, c.bucket)
	return err
}

func (c *loginCommit) write(tx *store.Tx) error {
	if c.stale = !c.cache.fresh(c.tag); c.stale {
		return nil
	}
	s := c.s
	if err := s.storeView(c.ctx, tx, c.ids, &c.l, c.v, c.now, c.wall, &c.written); err != nil {
		return err
	}
	if err := s.auditAttempt(c.ctx, tx, c.pr, c.a, c.l.view, c.v, c.d, c.res.TOTPRequired, c.now, c.wall); err != nil {
		return err
	}
	if c.d.Verdict != model.Allowed || !c.known {
		return nil
	}
	return s.onSuccess(c.ctx, tx, &c.res, c.user, c.a, c.d, c.wall)
}

func roleOf(r store.Role) model.Role {
	switch r {
	case store.RoleAdmin:
		return model.RoleAdmin
	case store.RoleOperator:
		return model.RoleOperator
	}
	return model.RoleViewer
}

// verify checks the secret (and the second factor). Unknown principals are
// verified against the dummy hash (R-ENUM). At the console, the master PIN
// is a right secret too (R-LASTADMIN).
func (s *Service) verify(ctx context.Context, u store.User, known bool, a Attempt, wall int64) (verification, error) {
	hash := ""
	if known {
		hash = u.PasswordHash
	}
	ok, err := s.hasher.Verify(ctx, hash, a.Secret)
	if err != nil {
		return verification{}, fmt.Errorf("auth: verify: %w", err)
	}
	if !ok && known && a.Channel == model.Console {
		dev, err := s.db.GetDevice(ctx)
		if err != nil {
			return verification{}, fmt.Errorf("auth: verify: %w", err)
		}
		if dev.MasterPINHash != "" {
			if ok, err = s.hasher.Verify(ctx, dev.MasterPINHash, a.Secret); err != nil {
				return verification{}, fmt.Errorf("auth: verify PIN: %w", err)
			}
			if ok {
				return verification{done: true, outcome: model.RightSecret}, nil
			}
		}
	}
	switch {
	case !ok:
		return verification{done: true, outcome: model.WrongSecret}, nil
	case len(u.TOTPSecret) == 0 || a.Channel == model.Console:
		return verification{done: true, outcome: model.RightSecret}, nil
	case a.TOTP == "":
		return verification{done: true, needOTP: true}, nil
	}
	if len(a.TOTP) != 6 {
		// Not an authenticator code: one of the single-use recovery codes
		// (a lost phone). Wrong counts like a wrong code (R-2FA).
		ok, err := s.useBackupCode(ctx, u, a.TOTP, wall)
		if err != nil {
			return verification{}, fmt.Errorf("auth: recovery code: %w", err)
		}
		if !ok {
			return verification{done: true, outcome: model.WrongSecondFactor}, nil
		}
		return verification{done: true, outcome: model.RightSecret}, nil
	}
	step, ok := checkTOTP(string(u.TOTPSecret), a.TOTP, time.Unix(0, wall))
	if ok {
		// A code is good once (its step must move forward).
		var fresh bool
		err := s.db.WithTx(ctx, func(tx *store.Tx) error {
			var err error
			fresh, err = tx.AdvanceTOTPStep(ctx, u.ID, step)
			return err
		})
		if err != nil {
			return verification{}, fmt.Errorf("auth: totp: %w", err)
		}
		ok = fresh
	}
	if !ok {
		return verification{done: true, outcome: model.WrongSecondFactor}, nil
	}
	return verification{done: true, outcome: model.RightSecret}, nil
}

// onSuccess creates the session and flags weak passwords, in the commit.
func (s *Service) onSuccess(ctx context.Context, tx *store.Tx, res *Result, u store.User, a Attempt, d model.Decision, wall int64) error {
	if a.Channel == model.Remote && !u.MustChangePassword && s.strong.weak(a.Secret, &u) {
		// A password found weak or common at login must be changed.
		u.MustChangePassword = true
		u.UpdatedNS = wall
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
	}
	res.User = u
	res.MustChangePassword = u.MustChangePassword
	if a.NoSession || a.Channel == model.Console {
		return nil
	}
	ep := endpointOf(a.Source.String(), a.UserAgent)
	// Read once: the policy an admin saves meanwhile applies from the next
	// sign-in.
	policy, _ := s.SessionPolicy()
	var before []store.Session
	var err error
	switch policy {
	case SessionsNotify:
		// Only other endpoints are news: a VMS that signs in every minute
		// from one endpoint reads none of its own sessions back.
		before, err = tx.ListLiveUserSessionsElsewhere(ctx, u.ID, wall, ep.source, ep.userAgent)
	case SessionsReplaceOldest:
		before, err = tx.ListLiveUserSessions(ctx, u.ID, wall)
	}
	if err != nil {
		return err
	}
	token, err := s.newSession(ctx, tx, u.ID, a.Peer, ep, wall)
	if err != nil {
		return err
	}
	res.Token = token
	newDevice := d.Effects&model.EffNewDevice != 0
	told, err := s.applySessionPolicy(ctx, tx, policy, u, ep, before, newDevice, wall)
	if err != nil || told || !newDevice || u.Email == "" {
		return err
	}
	_, err = tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "new_device", Recipient: u.Email,
		Subject: "New sign-in to your NVR", Body: fmt.Sprintf("User %s signed in from a new device at %s (%s).", u.Name, a.Source, time.Unix(0, wall).UTC().Format(time.RFC3339)),
		CreatedNS: wall, NextAttemptNS: wall})
	return err
}
