package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/nvr/store"
)

// Errors of administrative acts.
var (
	ErrNotActivated     = errors.New("device is not activated")
	ErrAlreadyActivated = errors.New("device is already activated")
	ErrLastAdmin        = errors.New("refused: this would leave no enabled administrator (R-LASTADMIN)")
	ErrNoUser           = errors.New("no such user")
)

// Actor names who did an administrative act, for the audit log (R-UNLOCK:
// audited with actor): "admin:alice", "console", "console:alice", "self:bob", "activation".
type Actor string

// Channel is where the actor acted from (SPEC §1): the console's own
// actors are "console" (master PIN) and "console:NAME" (an admin's
// password at the box); every other actor came over the network.
func (a Actor) Channel() store.Channel {
	if a == "console" || strings.HasPrefix(string(a), "console:") {
		return store.ChannelConsole
	}
	return store.ChannelRemote
}

// CheckPIN says why a master PIN is not acceptable: 6 to 12 digits.
func CheckPIN(pin string) error {
	if len(pin) < 6 || len(pin) > 12 {
		return fmt.Errorf("%w: master PIN must have 6 to 12 digits", ErrInvalidInput)
	}
	for _, r := range pin {
		if !unicode.IsDigit(r) || r > unicode.MaxASCII {
			return fmt.Errorf("%w: master PIN must be digits only", ErrInvalidInput)
		}
	}
	return nil
}

// Activate sets the first admin and the master PIN of an inactive device.
func (s *Service) Activate(ctx context.Context, username, password, pin string) (store.User, error) {
	pr, err := model.CanonicalPrincipal(username)
	if err != nil {
		return store.User{}, fmt.Errorf("%w: username: %v", ErrInvalidInput, err)
	}
	if err := CheckPassword(password, string(pr)); err != nil {
		return store.User{}, err
	}
	if err := CheckPIN(pin); err != nil {
		return store.User{}, err
	}
	pwHash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return store.User{}, err
	}
	pinHash, err := s.hasher.Hash(ctx, pin)
	if err != nil {
		return store.User{}, err
	}
	wall := s.clk.Now().UnixNano()
	u := store.User{Name: string(pr), DisplayName: username, Role: store.RoleAdmin, PasswordHash: pwHash, CreatedNS: wall, UpdatedNS: wall}
	err = s.writeTx(ctx, func(tx *store.Tx) error {
		dev, err := tx.GetDevice(ctx)
		if err != nil {
			return err
		}
		if dev.Activated {
			return ErrAlreadyActivated
		}
		if err := tx.ActivateDevice(ctx, pinHash, wall); err != nil {
			return err
		}
		if u.ID, err = tx.InsertUser(ctx, u); err != nil {
			return err
		}
		// Only the web (or the API) activates a device: a remote act.
		return s.audit(ctx, tx, "activation", string(pr), "", "", "activate", "device activated; first admin created", nil, wall)
	})
	if errors.Is(err, store.ErrAlreadyActivated) {
		err = ErrAlreadyActivated
	}
	if err != nil {
		return store.User{}, fmt.Errorf("auth: activate: %w", err)
	}
	return u, nil
}

// Activated reports whether the device has been activated.
func (s *Service) Activated(ctx context.Context) (bool, error) {
	dev, err := s.db.GetDevice(ctx)
	return dev.Activated, err
}

func (s *Service) audit(ctx context.Context, tx *store.Tx, actor Actor, principal, source string, kind store.KeyKind, outcome, reason string, det any, wall int64) error {
	rec := store.AuditRecord{WallNS: wall, InstantNS: s.clk.Instant(), Principal: principal, Source: source, KeyKind: kind,
		Channel: actor.Channel(), Actor: string(actor), Outcome: outcome, Reason: reason, Count: 1, FirstWallNS: wall, LastWallNS: wall}
	if det != nil {
		rec.Detail = mustJSON(det)
	}
	_, err := tx.AppendAudit(ctx, rec)
	return err
}

// NewUser describes a user to create.
type NewUser struct {
	Name, Password, Email string
	Role                  store.Role
	// ExpiresNS makes a guest account that stops working then (0: never).
	ExpiresNS int64
}

// CreateUser adds a user (admin act).
func (s *Service) CreateUser(ctx context.Context, actor Actor, nu NewUser) (store.User, error) {
	pr, err := model.CanonicalPrincipal(nu.Name)
	if err != nil {
		return store.User{}, fmt.Errorf("%w: username: %v", ErrInvalidInput, err)
	}
	if _, err := model.ParseRole(string(nu.Role)); err != nil || nu.Role == "" {
		return store.User{}, fmt.Errorf("%w: role must be admin, operator or viewer", ErrInvalidInput)
	}
	if err := CheckPassword(nu.Password, string(pr)); err != nil {
		return store.User{}, err
	}
	if err := checkEmail(nu.Email); err != nil {
		return store.User{}, err
	}
	hash, err := s.hasher.Hash(ctx, nu.Password)
	if err != nil {
		return store.User{}, err
	}
	wall := s.clk.Now().UnixNano()
	u := store.User{Name: string(pr), DisplayName: nu.Name, Email: nu.Email, Role: nu.Role, PasswordHash: hash, ExpiresNS: nu.ExpiresNS, CreatedNS: wall, UpdatedNS: wall}
	err = s.writeTx(ctx, func(tx *store.Tx) error {
		var err error
		if u.ID, err = tx.InsertUser(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, u.Name, "", "", "user_create", "created with role "+string(u.Role), nil, wall)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("auth: create user: %w", err)
	}
	return u, nil
}

// checkEmail says why an e-mail address is not acceptable ("" is: none).
// It is where notices and recovery codes go (R-RESET), so it must be one
// line a mail server can take; whether the mailbox exists only delivery
// can tell.
func checkEmail(addr string) error {
	switch {
	case addr == "":
		return nil
	case len(addr) > 254:
		return fmt.Errorf("%w: email address longer than 254 bytes", ErrInvalidInput)
	case !strings.Contains(addr, "@") || strings.HasPrefix(addr, "@") || strings.HasSuffix(addr, "@"):
		return fmt.Errorf("%w: email address: want name@domain", ErrInvalidInput)
	case strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.Is(unicode.Cf, r) }):
		return fmt.Errorf("%w: email address: no spaces or control characters", ErrInvalidInput)
	}
	return nil
}

// userByName canonicalises and looks up a user.
func userByName(ctx context.Context, q interface {
	GetUserByName(context.Context, string) (store.User, error)
}, name string) (store.User, error) {
	pr, err := model.CanonicalPrincipal(name)
	if err != nil {
		return store.User{}, fmt.Errorf("%w: username: %v", ErrInvalidInput, err)
	}
	u, err := q.GetUserByName(ctx, string(pr))
	if errors.Is(err, store.ErrNotFound) {
		return u, fmt.Errorf("%w: %s", ErrNoUser, pr)
	}
	return u, err
}

// enabledAdmins counts admins that can log in, other than except.
func enabledAdmins(ctx context.Context, tx *store.Tx, except int64, wall int64) (int, error) {
	users, err := tx.ListUsers(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range users {
		if u.ID != except && u.Role == store.RoleAdmin && !u.Disabled && (u.ExpiresNS == 0 || u.ExpiresNS > wall) {
			n++
		}
	}
	return n, nil
}

// UpdateUser changes a user's role, e-mail, expiry or disabled flag. It
// refuses to leave the device without an enabled admin (R-LASTADMIN), and
// disabling revokes the user's sessions.
func (s *Service) UpdateUser(ctx context.Context, actor Actor, name string, edit func(*store.User) error) (store.User, error) {
	wall := s.clk.Now().UnixNano()
	var u store.User
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		var err error
		if u, err = userByName(ctx, tx, name); err != nil {
			return err
		}
		before := u
		if err := edit(&u); err != nil {
			return err
		}
		u.ID, u.Name, u.PasswordHash, u.CreatedNS = before.ID, before.Name, before.PasswordHash, before.CreatedNS
		if _, err := model.ParseRole(string(u.Role)); err != nil {
			return fmt.Errorf("%w: role must be admin, operator or viewer", ErrInvalidInput)
		}
		if u.Email != before.Email {
			if err := checkEmail(u.Email); err != nil {
				return err
			}
		}
		if before.Role == store.RoleAdmin && (u.Role != store.RoleAdmin || u.Disabled || u.ExpiresNS != 0) {
			n, err := enabledAdmins(ctx, tx, u.ID, wall)
			if err != nil {
				return err
			}
			if n == 0 {
				return ErrLastAdmin
			}
		}
		u.UpdatedNS = wall
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if u.Disabled && !before.Disabled {
			if _, err := tx.RevokeUserSessions(ctx, u.ID, wall, "disabled"); err != nil {
				return err
			}
		}
		// Recovery codes back up the second factor: they go with it.
		if len(u.TOTPSecret) == 0 && len(before.TOTPSecret) > 0 {
			if err := tx.ReplaceRecoveryCodes(ctx, u.ID, nil, wall); err != nil {
				return err
			}
		}
		// Mirror Disabled into the principal key the model reads.
		if u.Disabled != before.Disabled {
			if err := s.setKeyDisabled(ctx, tx, model.Principal(u.Name), u.Disabled, wall); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, actor, u.Name, "", "", "user_update", describeUserChange(before, u), nil, wall)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("auth: update user: %w", err)
	}
	return u, nil
}

func describeUserChange(b, a store.User) string {
	var parts []string
	if b.Role != a.Role {
		parts = append(parts, fmt.Sprintf("role %s→%s", b.Role, a.Role))
	}
	if b.Disabled != a.Disabled {
		parts = append(parts, map[bool]string{true: "disabled", false: "enabled"}[a.Disabled])
	}
	if b.Email != a.Email {
		parts = append(parts, "e-mail changed")
	}
	if b.ExpiresNS != a.ExpiresNS {
		parts = append(parts, "expiry changed")
	}
	if (len(b.TOTPSecret) > 0) != (len(a.TOTPSecret) > 0) {
		parts = append(parts, map[bool]string{true: "two-factor authentication on", false: "two-factor authentication removed"}[len(a.TOTPSecret) > 0])
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

func (s *Service) setKeyDisabled(ctx context.Context, tx *store.Tx, pr model.Principal, disabled bool, wall int64) error {
	now := model.Instant(s.clk.Instant())
	id := store.KeyID{Kind: store.KindPrincipal, Principal: string(pr)}
	lk, err := s.loadKey(ctx, tx, id, now, wall)
	if err != nil {
		return err
	}
	k := lk.value
	k.Disabled = disabled
	return s.storeKey(ctx, tx, id, lk, k, now, wall, false)
}

// DeleteUser removes a user, never the last enabled admin.
func (s *Service) DeleteUser(ctx context.Context, actor Actor, name string) error {
	wall := s.clk.Now().UnixNano()
	return s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := userByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if u.Role == store.RoleAdmin {
			n, err := enabledAdmins(ctx, tx, u.ID, wall)
			if err != nil {
				return err
			}
			if n == 0 {
				return ErrLastAdmin
			}
		}
		if _, err := tx.RevokeUserSessions(ctx, u.ID, wall, "deleted"); err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, u.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, u.Name, "", "", "user_delete", "user deleted", nil, wall)
	})
}

// passwordAct is why a password is being set.
type passwordAct int

const (
	changeBySelf passwordAct = iota // the user changed it, knowing the old one
	resetByAdmin                    // R-RESET by an admin: change forced at next login
	resetBySelf                     // R-RESET by self-service recovery: the user chose it
)

// SetPassword replaces a user's password. An admin reset (admin true) also
// opens every key of the principal (R-RESET), revokes its sessions and
// forces a change at next login; a user's own change revokes its other
// sessions.
func (s *Service) SetPassword(ctx context.Context, actor Actor, name, password string, adminReset bool) error {
	u, err := userByName(ctx, s.db, name)
	if err != nil {
		return err
	}
	if err := CheckPassword(password, u.Name); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	act, how := changeBySelf, ""
	if adminReset {
		act, how = resetByAdmin, "an administrator ("+string(actor)+")"
	}
	unlock := s.lockKeys(model.Principal(u.Name), model.Source{})
	defer unlock()
	wall := s.clk.Now().UnixNano()
	return s.withRetries(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, u.ID)
		if err != nil {
			return err
		}
		return s.setPasswordTx(ctx, tx, actor, u, hash, act, how, "", wall)
	})
}

// withRetries runs fn in a transaction, again when a key changed under it
// (errStale: the console wrote it meanwhile); fn must be safe to repeat,
// which it is because a failed transaction leaves nothing.
func (s *Service) withRetries(ctx context.Context, fn func(*store.Tx) error) error {
	var err error
	for try := 0; try < maxRetries; try++ {
		if err = s.writeTx(ctx, fn); !errors.Is(err, errStale) {
			return err
		}
	}
	return err
}

// setPasswordTx stores a new password hash for u (read in tx) and does what
// act implies: every password change revokes the user's sessions and voids
// an outstanding e-mailed recovery code; a reset (R-RESET) also opens the
// principal and all its pairs at level 0 and tells the user by e-mail
// (how says who reset it); only an admin reset forces a change at next
// login. source is the client's, for the audit record ("" for an admin
// act). The caller holds the principal's stripe.
func (s *Service) setPasswordTx(ctx context.Context, tx *store.Tx, actor Actor, u store.User, hash string, act passwordAct, how, source string, wall int64) error {
	reset := act != changeBySelf
	u.PasswordHash, u.MustChangePassword, u.UpdatedNS = hash, act == resetByAdmin, wall
	if err := tx.UpdateUser(ctx, u); err != nil {
		return err
	}
	reason := "password changed"
	if reset {
		reason = "password reset"
	}
	if _, err := tx.RevokeUserSessions(ctx, u.ID, wall, reason); err != nil {
		return err
	}
	if err := tx.InvalidateRecoveryToken(ctx, u.Name); err != nil {
		return err
	}
	if !reset {
		return s.audit(ctx, tx, actor, u.Name, "", "", "password_change", reason+" (R-RESET)", nil, wall)
	}
	if err := s.unlockPrincipalTx(ctx, tx, model.Principal(u.Name), wall); err != nil {
		return err
	}
	if err := s.audit(ctx, tx, actor, u.Name, source, "", "reset", reason+" by "+how+": every key of the account opened, sessions revoked (R-RESET)", nil, wall); err != nil {
		return err
	}
	if u.Email == "" {
		return nil
	}
	_, err := tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "password_reset", Recipient: u.Email,
		Subject: "Your NVR password was reset",
		Body: fmt.Sprintf("The password of user %s was reset at %s by %s.\n\n"+
			"Every session was signed out and the account's locks were opened. If this was not you, tell the device's administrator at once.",
			u.Name, time.Unix(0, wall).UTC().Format(time.RFC3339), how),
		CreatedNS: wall, NextAttemptNS: wall})
	return err
}

// UnlockScope says what Unlock opens (R-UNLOCK).
type UnlockScope struct {
	User   string       // the principal's keys (with Source: one pair)
	Source model.Source // with User: the pair and the source key
	All    bool         // every key
}

// Unlock opens keys (R-UNLOCK): mode Open, failures cleared, level 0.
func (s *Service) Unlock(ctx context.Context, actor Actor, sc UnlockScope) (int, error) {
	wall := s.clk.Now().UnixNano()
	opened := 0
	var pr model.Principal
	if !sc.All {
		var err error
		if pr, err = model.CanonicalPrincipal(sc.User); err != nil {
			return 0, fmt.Errorf("%w: user: %v", ErrInvalidInput, err)
		}
		unlock := s.lockKeys(pr, sc.Source)
		defer unlock()
	}
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		var ids []store.KeyID
		switch {
		case sc.All:
			// Every key, open ones with counters too (INV-RESET).
			var err error
			if ids, err = s.reader.allKeyIDs(ctx); err != nil {
				return err
			}
		case !sc.Source.IsZero():
			ids = []store.KeyID{
				{Kind: store.KindPair, Principal: string(pr), Source: sc.Source.String()},
				{Kind: store.KindSource, Source: sc.Source.String()},
			}
		default:
			keys, err := tx.ListPrincipalKeys(ctx, string(pr))
			if err != nil {
				return err
			}
			for _, k := range keys {
				ids = append(ids, k.KeyID)
			}
		}
		seen := map[store.KeyID]bool{}
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			n, err := s.unlockKeyTx(ctx, tx, id, wall)
			if err != nil {
				return err
			}
			opened += n
		}
		what := "every key"
		if !sc.All {
			what = "keys of " + string(pr)
			if !sc.Source.IsZero() {
				what += " from " + sc.Source.String()
			}
		}
		return s.audit(ctx, tx, actor, string(pr), map[bool]string{true: sc.Source.String(), false: ""}[!sc.Source.IsZero()], "", "unlock",
			fmt.Sprintf("%s opened (%d were locked) (R-UNLOCK)", what, opened), nil, wall)
	})
	if err != nil {
		return 0, fmt.Errorf("auth: unlock: %w", err)
	}
	return opened, nil
}

func (s *Service) unlockPrincipalTx(ctx context.Context, tx *store.Tx, pr model.Principal, wall int64) error {
	keys, err := tx.ListPrincipalKeys(ctx, string(pr))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := s.unlockKeyTx(ctx, tx, k.KeyID, wall); err != nil {
			return err
		}
	}
	return nil
}

// unlockKeyTx opens one key; it reports 1 if the key was refusing.
func (s *Service) unlockKeyTx(ctx context.Context, tx *store.Tx, id store.KeyID, wall int64) (int, error) {
	now := model.Instant(s.clk.Instant())
	lk, err := s.loadKey(ctx, tx, id, now, wall)
	if err != nil {
		return 0, err
	}
	p := s.Policy()
	k := lk.value
	k.Key, _ = model.Advance(k.Key, kindOf(id.Kind), now, &p)
	was := k.Mode != model.Open
	k = model.UnlockPair(k)
	if err := s.storeKey(ctx, tx, id, lk, k, now, wall, false); err != nil {
		return 0, err
	}
	if was {
		return 1, nil
	}
	return 0, nil
}

func kindOf(k store.KeyKind) model.Kind {
	switch k {
	case store.KindPair:
		return model.KindPair
	case store.KindSource:
		return model.KindSource
	case store.KindConsole:
		return model.KindConsole
	}
	return model.KindPrincipal
}

// Lock is one key that is not Open, for the lock status page and API.
type Lock struct {
	Kind      string        `json:"kind"`
	Principal string        `json:"user,omitempty"`
	Source    string        `json:"source,omitempty"`
	Mode      string        `json:"mode"`
	Level     int           `json:"level"`
	Until     *time.Time    `json:"until,omitempty"` // nil: no timed end
	Remaining time.Duration `json:"-"`
	Why       string        `json:"why"`
}

// ListLocks returns every key that refuses now, with why.
func (s *Service) ListLocks(ctx context.Context) ([]Lock, error) {
	now := model.Instant(s.clk.Instant())
	wallT := s.clk.Now()
	wall := wallT.UnixNano()
	keys, err := s.db.ListNotOpen(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: locks: %w", err)
	}
	p := s.Policy()
	var out []Lock
	for _, ks := range keys {
		sk, err := DecodeKey(ks.State)
		if err != nil {
			return nil, fmt.Errorf("auth: locks: %s: %w", ks.KeyID, err)
		}
		k, _ := model.Advance(s.restore(ks.KeyID, ks.Version, sk, now, wall).Key, kindOf(ks.Kind), now, &p)
		if k.Mode == model.Open {
			continue
		}
		l := Lock{Kind: string(ks.Kind), Principal: ks.Principal, Source: ks.Source, Mode: k.Mode.String(), Level: int(k.Level), Remaining: k.Remaining(now)}
		if k.Until != model.Forever {
			u := wallT.Add(k.Remaining(now)).UTC()
			l.Until = &u
		}
		l.Why = s.why(ctx, ks)
		out = append(out, l)
	}
	return out, nil
}

// why is the reason of the newest lock or hold record for the key.
func (s *Service) why(ctx context.Context, ks store.KeyState) string {
	for _, outcome := range []string{"hold", "lock"} {
		recs, err := s.db.ListAudit(ctx, store.AuditFilter{Principal: ks.Principal, Source: ks.Source, Outcome: outcome, Limit: 20})
		if err != nil {
			continue
		}
		for _, r := range recs {
			if r.KeyKind == ks.Kind {
				return r.Reason
			}
		}
	}
	return "failed logins"
}

// SetPolicy validates and installs a new policy, stores it and audits the
// change; switching protection off is allowed but recorded as a warning.
func (s *Service) SetPolicy(ctx context.Context, actor Actor, p model.Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	wall := s.clk.Now().UnixNano()
	text := string(policyfile.Marshal(p))
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		if err := tx.SetPolicy(ctx, store.Policy{YAML: text, UpdatedNS: wall, UpdatedBy: string(actor)}); err != nil {
			return err
		}
		reason := "policy changed"
		if p.Disabled {
			reason = "WARNING: lockout protection disabled"
		}
		return s.audit(ctx, tx, actor, "", "", "", "policy_change", reason, map[string]string{"policy": text}, wall)
	})
	if err != nil {
		return fmt.Errorf("auth: set policy: %w", err)
	}
	s.policy.Store(&p)
	return nil
}

// UsePolicy installs a policy another process saved (the console's
// `latch policy set`), without auditing it again.
func (s *Service) UsePolicy(p model.Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	s.policy.Store(&p)
	return nil
}

// FactoryReset erases users, keys, sessions and settings and returns the
// device to inactive; recordings and their index stay (R-FACTORY).
func (s *Service) FactoryReset(ctx context.Context, actor Actor) error {
	wall := s.clk.Now().UnixNano()
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		if err := tx.FactoryReset(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "", "", "", "factory_reset", "users, keys, sessions and settings erased; recordings kept (R-FACTORY)", nil, wall)
	})
	if err != nil {
		return fmt.Errorf("auth: factory reset: %w", err)
	}
	return s.loadDevice(ctx)
}

// Maintain seals the audit log's closed refusal aggregates and prunes dead
// sessions and spent recovery rows; serve calls it once a minute.
func (s *Service) Maintain(ctx context.Context) error {
	wall := s.clk.Now().UnixNano()
	// Audit sealing and pruning touch no key or user: not a cache write.
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.SealAuditAggregates(ctx, wall/int64(time.Minute)); err != nil {
			return err
		}
		if _, err := tx.PruneSessions(ctx, wall); err != nil {
			return err
		}
		_, err := tx.PruneRecoveryTokens(ctx, wall, wall-int64(RecoveryWindow))
		return err
	})
}

// Reanchor re-persists every key at the current instant and wall time: on
// a wall-clock step seen while running and on a clean shutdown, so a later
// restart never counts the step, or the time this process already
// measured, as time served (R-RESTART; docs/SPEC.md §5: every snapshot,
// open keys with counters and levels included). On shutdown it also seals
// every refusal aggregate.
func (s *Service) Reanchor(ctx context.Context, shutdown bool) (int, error) {
	now := model.Instant(s.clk.Instant())
	wall := s.clk.Now().UnixNano()
	n := 0
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		n = 0
		ids, err := s.reader.allKeyIDs(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			lk, err := s.loadKey(ctx, tx, id, now, wall)
			if err != nil {
				return err
			}
			if err := s.storeKey(ctx, tx, id, lk, lk.value, now, wall, true); err != nil {
				return err
			}
			n++
		}
		if shutdown {
			_, err = tx.SealAllAuditAggregates(ctx)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("auth: re-anchor: %w", err)
	}
	return n, nil
}
