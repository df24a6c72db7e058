package auth

// A gopter `commands` test of the auth service against the lock model
// (reference/formal-style-anchors.md §3, §7.5): random sequences of right
// and wrong logins from three sources and the console, unlocks, admin
// resets, time passing, wall-clock steps and restarts run against the real
// service on a temp-file SQLite database and a simulated clock, and every
// decision must equal model.Decide's for the same inputs at the same
// instant.
//
// The model is a world.World of every key, plus what the database should
// hold for each key: the service's persistence rule, stated once here.
//
//   - An act (an attempt, an unlock, a reset) writes a key when it changes
//     it, or when the stored key was written by an earlier boot; a key that
//     becomes zero is deleted. Everything else it leaves as it was.
//   - Reanchor (a wall-clock step seen while running, a clean shutdown)
//     rewrites every key at the current instant and wall time (R-RESTART).
//   - A restart restores every key written by an earlier boot at the new
//     boot's first instant and wall time: remaining' = remaining −
//     clamp(wall_now − wall_saved, 0, remaining); from then on only
//     instants count (R-MONO).
//
// Every command also checks, after it ran, that the database holds exactly
// the rows the rule says (snapshot, boot, instant of saving) and that each
// restores to the model's key; every attempt that the model refuses must
// have spent no hashing and every admitted one must have (R-NOORACLE);
// every restart verifies the audit chain. Concurrency is out of scope
// here: gopter runs commands sequentially (the linearizability test with
// porcupine covers it).
//
// The seed is fixed so CI is reproducible; -gopter.seed=N replays another.

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/commands"
	"github.com/leanovate/gopter/gen"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/world"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

var gopterSeed = flag.Int64("gopter.seed", 20261126, "seed of the gopter commands test (printed on failure)")

// deviceSecret is the device key every commands-test database draws, so
// the model fingerprints secrets exactly as the service does (R-REPLAY).
var deviceSecret = []byte("latch commands test device key!!")

type repeatReader []byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r[i%len(r)]
	}
	return len(p), nil
}

// The pools commands draw from: small, so that keys collide.
var (
	cmdSources = []string{"192.0.2.1", "192.0.2.2", "2001:db8:1::5"}
	// Spellings of each principal: canonicalisation must map them to one key.
	cmdSpellings = map[model.Principal][]string{
		"admin": {"admin", "Admin", " ADMIN", "ａｄｍｉｎ"},
		"oper":  {"oper", "OPER"},
		"view":  {"view", "View"},
		"ghost": {"ghost", "GHOST"}, // unknown: counted and locked like a viewer (R-ENUM)
	}
	cmdPrincipals = []model.Principal{"admin", "oper", "view", "ghost"}
	cmdPasswords  = []string{"correct horse battery staple", "violet tangerine kayak 42",
		"marble orchestra quietly 77", "saffron lighthouse pebble 19"}
	// Eight distinct wrong secrets: more than any pair threshold in the
	// presets can dedup (R-REPLAY), few enough that replays happen.
	cmdWrong = []string{"hunter2", "letmein1", "Admin123", "password", "qwerty12", "dragon99", "monkey77", "sunshine"}
)

const cmdPIN = "482915"

// keyRef names one key of the world.
type keyRef struct {
	Kind      model.Kind
	Principal model.Principal
	Source    model.Source
}

func (r keyRef) String() string {
	switch r.Kind {
	case model.KindPair:
		return fmt.Sprintf("pair(%s,%s)", r.Principal, r.Source)
	case model.KindSource:
		return fmt.Sprintf("source(%s)", r.Source)
	}
	return fmt.Sprintf("%s(%s)", r.Kind, r.Principal)
}

func (r keyRef) storeID() store.KeyID {
	switch r.Kind {
	case model.KindPair:
		return store.KeyID{Kind: store.KindPair, Principal: string(r.Principal), Source: r.Source.String()}
	case model.KindSource:
		return store.KeyID{Kind: store.KindSource, Source: r.Source.String()}
	case model.KindPrincipal:
		return store.KeyID{Kind: store.KindPrincipal, Principal: string(r.Principal)}
	}
	return store.KeyID{Kind: store.KindConsole, Principal: string(r.Principal)}
}

// universe is every key the pools can touch.
func universe() []keyRef {
	var refs []keyRef
	for _, pr := range cmdPrincipals {
		refs = append(refs, keyRef{Kind: model.KindPrincipal, Principal: pr}, keyRef{Kind: model.KindConsole, Principal: pr})
		for _, s := range cmdSources {
			refs = append(refs, keyRef{Kind: model.KindPair, Principal: pr, Source: mustSource(s)})
		}
	}
	for _, s := range cmdSources {
		refs = append(refs, keyRef{Kind: model.KindSource, Source: mustSource(s)})
	}
	return refs
}

func mustSource(s string) model.Source {
	src, err := model.ParseSource(s)
	if err != nil {
		panic(err)
	}
	return src
}

// viewRefs are the keys one attempt involves.
func viewRefs(pr model.Principal, src model.Source) []keyRef {
	refs := []keyRef{{Kind: model.KindPrincipal, Principal: pr}, {Kind: model.KindConsole, Principal: pr}}
	if !src.IsZero() {
		refs = append(refs, keyRef{Kind: model.KindPair, Principal: pr, Source: src}, keyRef{Kind: model.KindSource, Source: src})
	}
	return refs
}

// saved is what the database should hold for one key.
type saved struct {
	Snap    model.Snapshot
	Boot    int
	SavedAt model.Instant
}

type account struct {
	password string
	role     model.Role
}

// mstate is the model: immutable once built (NextState copies).
type mstate struct {
	policy   *model.Policy
	w        *world.World
	saved    map[keyRef]saved
	now      model.Instant
	wall     int64 // unix ns
	boot     int
	accounts map[model.Principal]account
	// last is the previous burst, which half the bursts come back to.
	last *loginCmd
	// expect is what the last command must have produced.
	expect expectation
}

type expectation struct {
	decisions []model.Decision
}

func (s *mstate) String() string {
	return fmt.Sprintf("{%s boot %d at %s}", s.policy.Preset, s.boot, time.Duration(s.now))
}

func newModelState(p model.Policy) *mstate {
	s := &mstate{policy: &p, w: world.New(p), saved: map[keyRef]saved{}, wall: epoch.UnixNano(), boot: 1,
		accounts: map[model.Principal]account{
			"admin": {cmdPasswords[0], model.RoleAdmin},
			"oper":  {cmdPasswords[1], model.RoleOperator},
			"view":  {cmdPasswords[2], model.RoleViewer},
		}}
	return s
}

func (s *mstate) clone() *mstate {
	c := *s
	c.w = &world.World{Policy: s.w.Policy, Pairs: maps.Clone(s.w.Pairs), Sources: maps.Clone(s.w.Sources),
		Principals: maps.Clone(s.w.Principals), Consoles: maps.Clone(s.w.Consoles)}
	c.saved = maps.Clone(s.saved)
	c.accounts = maps.Clone(s.accounts)
	c.expect = expectation{}
	return &c
}

func (s *mstate) key(r keyRef) model.Pair {
	switch r.Kind {
	case model.KindPair:
		return s.w.Pairs[world.PairID{Principal: r.Principal, Source: r.Source}]
	case model.KindSource:
		return model.Pair{Key: s.w.Sources[r.Source]}
	case model.KindPrincipal:
		return model.Pair{Key: s.w.Principals[r.Principal]}
	}
	return model.Pair{Key: s.w.Consoles[r.Principal]}
}

func putKey[K comparable, V comparable](m map[K]V, k K, v V) {
	var zero V
	if v == zero {
		delete(m, k)
		return
	}
	m[k] = v
}

func (s *mstate) setKey(r keyRef, p model.Pair) {
	switch r.Kind {
	case model.KindPair:
		putKey(s.w.Pairs, world.PairID{Principal: r.Principal, Source: r.Source}, p)
	case model.KindSource:
		putKey(s.w.Sources, r.Source, p.Key)
	case model.KindPrincipal:
		putKey(s.w.Principals, r.Principal, p.Key)
	default:
		putKey(s.w.Consoles, r.Principal, p.Key)
	}
}

// refs lists every key the world holds, in a fixed order.
func (s *mstate) refs() []keyRef {
	var refs []keyRef
	for id := range s.w.Pairs {
		refs = append(refs, keyRef{Kind: model.KindPair, Principal: id.Principal, Source: id.Source})
	}
	for src := range s.w.Sources {
		refs = append(refs, keyRef{Kind: model.KindSource, Source: src})
	}
	for pr := range s.w.Principals {
		refs = append(refs, keyRef{Kind: model.KindPrincipal, Principal: pr})
	}
	for pr := range s.w.Consoles {
		refs = append(refs, keyRef{Kind: model.KindConsole, Principal: pr})
	}
	slices.SortFunc(refs, func(a, b keyRef) int { return strings.Compare(a.String(), b.String()) })
	return refs
}

// wrote applies the persistence rule to a key an act touched.
func (s *mstate) wrote(r keyRef, before, after model.Pair) {
	sv, ok := s.saved[r]
	if before == after && (!ok || sv.Boot == s.boot) {
		return
	}
	if after == (model.Pair{}) {
		delete(s.saved, r)
		return
	}
	s.saved[r] = saved{Snap: model.Persist(after, s.now, s.wall), Boot: s.boot, SavedAt: s.now}
}

// setAndWrite replaces a key and applies the persistence rule.
func (s *mstate) setAndWrite(r keyRef, after model.Pair) {
	before := s.key(r)
	s.setKey(r, after)
	s.wrote(r, before, after)
}

func (s *mstate) reanchorAll() {
	for _, r := range s.refs() {
		s.saved[r] = saved{Snap: model.Persist(s.key(r), s.now, s.wall), Boot: s.boot, SavedAt: s.now}
	}
}

// checkInvariant: every key of the world is in the database and nothing else.
func (s *mstate) checkInvariant() {
	refs := s.refs()
	if len(refs) != len(s.saved) {
		panic(fmt.Sprintf("model: world has %d keys, database %d", len(refs), len(s.saved)))
	}
	for _, r := range refs {
		if _, ok := s.saved[r]; !ok {
			panic(fmt.Sprintf("model: %s is in the world but not saved", r))
		}
	}
}

// The system under test: a service on a temp-file database.
type sysUT struct {
	dir    string
	path   string
	clk    *clock.Sim
	db     *store.DB
	svc    *Service
	hasher *Hasher
	boot   int
	policy model.Policy
	setup  error
	pw     map[model.Principal]string
}

func bootID(boot int) uint64 { return uint64(1000 + boot) }

func cmdStoreOptions() store.Options {
	return store.Options{Rand: repeatReader(deviceSecret)}
}

// templates holds one database activated with the three accounts: every
// case starts from a copy, which is much cheaper than migrating,
// activating and strength-checking passwords again.
var templates struct {
	sync.Mutex
	path string
}

// templateDB makes the template in dir (a test's temp dir) once.
func templateDB(dir string) (string, error) {
	templates.Lock()
	defer templates.Unlock()
	if templates.path != "" {
		return templates.path, nil
	}
	s := &sysUT{dir: dir, path: filepath.Join(dir, "latch.db"), clk: clock.NewSim(epoch), hasher: NewHasher(CheapParams, 1),
		boot: 0, policy: model.Default()}
	if err := s.open(); err != nil {
		return "", err
	}
	defer func() {
		s.svc.Close()
		s.db.Close()
	}()
	ctx := context.Background()
	if _, err := s.svc.Activate(ctx, "admin", cmdPasswords[0], cmdPIN); err != nil {
		return "", err
	}
	for _, u := range []NewUser{{Name: "oper", Password: cmdPasswords[1], Role: store.RoleOperator},
		{Name: "view", Password: cmdPasswords[2], Role: store.RoleViewer}} {
		if _, err := s.svc.CreateUser(ctx, "admin:admin", u); err != nil {
			return "", err
		}
	}
	templates.path = s.path
	return s.path, nil
}

func newSysUT(p model.Policy) *sysUT {
	s := &sysUT{clk: clock.NewSim(epoch), hasher: NewHasher(CheapParams, 2), boot: 1, policy: p}
	templates.Lock()
	tmpl := templates.path
	templates.Unlock()
	if tmpl == "" {
		s.setup = fmt.Errorf("no template database")
		return s
	}
	if s.dir, s.setup = os.MkdirTemp("", "latch-commands-"); s.setup != nil {
		return s
	}
	s.path = filepath.Join(s.dir, "latch.db")
	var b []byte
	if b, s.setup = os.ReadFile(tmpl); s.setup != nil {
		return s
	}
	if s.setup = os.WriteFile(s.path, b, 0o600); s.setup != nil {
		return s
	}
	s.setup = s.open()
	return s
}

func (s *sysUT) open() error {
	db, err := store.Open(s.path, cmdStoreOptions())
	if err != nil {
		return err
	}
	svc, err := New(db, Config{Clock: s.clk, Hasher: s.hasher, Policy: s.policy, BootID: bootID(s.boot)})
	if err != nil {
		db.Close()
		return err
	}
	s.db, s.svc = db, svc
	return nil
}

func (s *sysUT) close() {
	if s.svc != nil {
		s.svc.Close()
		s.svc = nil
	}
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// observed is what the service did and what its database holds after a
// command.
type observed struct {
	err       error
	decisions []model.Decision
	verifies  []int64
	stored    map[keyRef]StoredKey
	restored  map[keyRef]model.Pair
	chain     error
}

func (s *sysUT) observe(o *observed) {
	ctx := context.Background()
	o.stored, o.restored = map[keyRef]StoredKey{}, map[keyRef]model.Pair{}
	now, wall := model.Instant(s.clk.Instant()), s.clk.Now().UnixNano()
	byID := map[store.KeyID]keyRef{}
	for _, r := range universe() {
		byID[r.storeID()] = r
	}
	rows, err := s.svc.reader.db.QueryContext(ctx, `SELECT kind, principal, source, version, state FROM key_states`)
	if err != nil {
		o.err = err
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id store.KeyID
		var version int64
		var state []byte
		if err := rows.Scan(&id.Kind, &id.Principal, &id.Source, &version, &state); err != nil {
			o.err = err
			return
		}
		r, ok := byID[id]
		if !ok {
			o.err = fmt.Errorf("unexpected key %s", id)
			return
		}
		sk, err := DecodeKey(state)
		if err != nil {
			o.err = fmt.Errorf("%s: %w", r, err)
			return
		}
		o.stored[r] = sk
		o.restored[r] = s.svc.restore(id, version, sk, now, wall)
	}
	o.err = rows.Err()
}

// run wraps a command's action with the observation every command makes.
func run(sut commands.SystemUnderTest, act func(s *sysUT, o *observed)) commands.Result {
	s := sut.(*sysUT)
	o := &observed{}
	if s.setup != nil {
		o.err = fmt.Errorf("setup: %w", s.setup)
		return o
	}
	act(s, o)
	if o.err == nil {
		s.observe(o)
	}
	return o
}

// check is every command's post-condition: no error, and the database
// holds exactly what the persistence rule says, restoring to the world.
func check(st commands.State, res commands.Result, extra func(s *mstate, o *observed) error) *gopter.PropResult {
	s, o := st.(*mstate), res.(*observed)
	fail := func(err error) *gopter.PropResult {
		// Labels are what gopter's reporter prints for a falsified property.
		return &gopter.PropResult{Status: gopter.PropFalse, Error: err, Labels: []string{err.Error()}}
	}
	if o.err != nil {
		return fail(o.err)
	}
	if extra != nil {
		if err := extra(s, o); err != nil {
			return fail(err)
		}
	}
	for _, r := range universe() {
		sk, inDB := o.stored[r]
		want, inModel := s.saved[r]
		switch {
		case inDB && !inModel:
			return fail(fmt.Errorf("%s: stored %+v, the model has no row", r, sk))
		case !inDB && inModel:
			return fail(fmt.Errorf("%s: not stored, the model has %+v", r, want))
		case !inDB:
			continue
		}
		if got := (saved{Snap: sk.Snapshot, Boot: int(sk.BootID) - 1000, SavedAt: sk.SavedAt}); got != want {
			return fail(fmt.Errorf("%s: stored\n  %+v\nthe model says\n  %+v", r, got, want))
		}
		if got, want := o.restored[r], s.key(r); got != want {
			return fail(fmt.Errorf("%s: restores to\n  %+v\nthe model's key is\n  %+v", r, got, want))
		}
	}
	return &gopter.PropResult{Status: gopter.PropTrue}
}

// loginCmd is a burst of attempts by one principal from one place (src
// −1 is the console), each with its own secret: "right", "pin" or a wrong
// password. Bursts reach locks, escalation and holds in few commands.
type loginCmd struct {
	spelling string
	src      int
	secrets  []string
}

func (c loginCmd) principal() model.Principal {
	pr, err := model.CanonicalPrincipal(c.spelling)
	if err != nil {
		panic(err)
	}
	return pr
}

func (c loginCmd) source() model.Source {
	if c.src < 0 {
		return model.Source{}
	}
	return mustSource(cmdSources[c.src])
}

func (c loginCmd) String() string {
	where := "console"
	if c.src >= 0 {
		where = cmdSources[c.src]
	}
	return fmt.Sprintf("Login(%q from %s with %s)", c.spelling, where, strings.Join(c.secrets, ","))
}

// password is the secret presented for a secret kind, given the current
// passwords.
func (c loginCmd) password(secret string, passwords func(model.Principal) (string, bool)) string {
	switch secret {
	case "right":
		if pw, ok := passwords(c.principal()); ok {
			return pw
		}
		return cmdPasswords[3]
	case "pin":
		return cmdPIN
	}
	return secret
}

func (c loginCmd) Run(sut commands.SystemUnderTest) commands.Result {
	return run(sut, func(s *sysUT, o *observed) {
		ch := model.Remote
		if c.src < 0 {
			ch = model.Console
		}
		for _, secret := range c.secrets {
			// The SUT tracks the passwords it set itself (resets), as the
			// model tracks its accounts.
			pw := c.password(secret, func(pr model.Principal) (string, bool) { pw, ok := s.passwords()[pr]; return pw, ok })
			before := s.hasher.Verifications()
			res, err := s.svc.Login(context.Background(), Attempt{Username: c.spelling, Secret: pw, Source: c.source(), Channel: ch})
			if err != nil {
				o.err = err
				return
			}
			o.decisions = append(o.decisions, res.Decision)
			o.verifies = append(o.verifies, s.hasher.Verifications()-before)
		}
	})
}

func (c loginCmd) NextState(st commands.State) commands.State {
	s := st.(*mstate).clone()
	pr, src := c.principal(), c.source()
	refs := viewRefs(pr, src)
	for _, secret := range c.secrets {
		acct, known := s.accounts[pr]
		pw := c.password(secret, func(pr model.Principal) (string, bool) { a, ok := s.accounts[pr]; return a.password, ok })
		ev := model.Event{Attempt: model.Attempt{Role: acct.role, Print: model.Fingerprint(deviceSecret, pw)}}
		if c.src < 0 {
			ev.Channel = model.Console
		}
		switch {
		case known && secret == "right":
			ev.Outcome = model.RightSecret
		case known && secret == "pin" && c.src < 0:
			ev.Outcome = model.RightSecret
		default:
			ev.Outcome = model.WrongSecret
		}
		before := make([]model.Pair, len(refs))
		for i, r := range refs {
			before[i] = s.key(r)
		}
		v, d := model.Decide(s.w.View(pr, src), ev, s.now, s.policy)
		s.w.Store(pr, src, v)
		for i, r := range refs {
			s.wrote(r, before[i], s.key(r))
		}
		s.expect.decisions = append(s.expect.decisions, d)
	}
	s.last = &c
	return s
}

func (loginCmd) PreCondition(commands.State) bool { return true }

func (c loginCmd) PostCondition(st commands.State, res commands.Result) *gopter.PropResult {
	return check(st, res, func(s *mstate, o *observed) error {
		for i, want := range s.expect.decisions {
			got := o.decisions[i]
			if got != want {
				return fmt.Errorf("%s: attempt %d decided\n  %+v\nthe model decides\n  %+v", c, i, got, want)
			}
			// R-NOORACLE: a refusal spends no hashing; an admitted attempt verifies.
			if refused := got.Verdict == model.Refused; refused != (o.verifies[i] == 0) {
				return fmt.Errorf("%s: attempt %d: verdict %s with %d verifications", c, i, got.Verdict, o.verifies[i])
			}
		}
		return nil
	})
}

// unlockCmd is R-UNLOCK by an admin: one pair (and its source), a
// principal, or everything.
type unlockCmd struct {
	scope string // "pair", "user", "all"
	pr    model.Principal
	src   int
}

func (c unlockCmd) String() string {
	switch c.scope {
	case "pair":
		return fmt.Sprintf("Unlock(%s from %s)", c.pr, cmdSources[c.src])
	case "user":
		return fmt.Sprintf("Unlock(%s)", c.pr)
	}
	return "Unlock(all)"
}

func (c unlockCmd) Run(sut commands.SystemUnderTest) commands.Result {
	return run(sut, func(s *sysUT, o *observed) {
		sc := UnlockScope{All: c.scope == "all"}
		if !sc.All {
			sc.User = string(c.pr)
		}
		if c.scope == "pair" {
			sc.Source = mustSource(cmdSources[c.src])
		}
		_, o.err = s.svc.Unlock(context.Background(), "admin:admin", sc)
	})
}

func (c unlockCmd) NextState(st commands.State) commands.State {
	s := st.(*mstate).clone()
	switch c.scope {
	case "pair":
		src := mustSource(cmdSources[c.src])
		pair := keyRef{Kind: model.KindPair, Principal: c.pr, Source: src}
		s.setAndWrite(pair, model.UnlockPair(s.key(pair)))
		srcKey := keyRef{Kind: model.KindSource, Source: src}
		s.setAndWrite(srcKey, model.Pair{Key: model.Unlock(s.key(srcKey).Key)})
	case "user":
		s.unlockPrincipal(c.pr)
	default:
		for _, r := range s.refs() {
			s.setAndWrite(r, unlockRef(r, s.key(r)))
		}
	}
	return s
}

func unlockRef(r keyRef, k model.Pair) model.Pair {
	if r.Kind == model.KindPair {
		return model.UnlockPair(k)
	}
	return model.Pair{Key: model.Unlock(k.Key)}
}

// unlockPrincipal opens the principal, its console key and all its pairs
// (R-UNLOCK for a user, and the key side of R-RESET).
func (s *mstate) unlockPrincipal(pr model.Principal) {
	for _, r := range s.refs() {
		if r.Principal == pr {
			s.setAndWrite(r, unlockRef(r, s.key(r)))
		}
	}
}

func (unlockCmd) PreCondition(commands.State) bool { return true }

func (c unlockCmd) PostCondition(st commands.State, res commands.Result) *gopter.PropResult {
	return check(st, res, nil)
}

// resetCmd is an admin password reset (R-RESET).
type resetCmd struct {
	pr       model.Principal
	password int
}

func (c resetCmd) String() string { return fmt.Sprintf("Reset(%s, password %d)", c.pr, c.password) }

func (c resetCmd) Run(sut commands.SystemUnderTest) commands.Result {
	return run(sut, func(s *sysUT, o *observed) {
		o.err = s.svc.SetPassword(context.Background(), "admin:admin", string(c.pr), cmdPasswords[c.password], true)
		if o.err == nil {
			s.setPassword(c.pr, cmdPasswords[c.password])
		}
	})
}

func (c resetCmd) NextState(st commands.State) commands.State {
	s := st.(*mstate).clone()
	a := s.accounts[c.pr]
	a.password = cmdPasswords[c.password]
	s.accounts[c.pr] = a
	s.unlockPrincipal(c.pr)
	return s
}

func (c resetCmd) PreCondition(st commands.State) bool {
	_, known := st.(*mstate).accounts[c.pr]
	return known
}

func (c resetCmd) PostCondition(st commands.State, res commands.Result) *gopter.PropResult {
	return check(st, res, nil)
}

// advanceCmd lets time pass on the monotonic clock (and the wall clock
// with it).
type advanceCmd struct{ d time.Duration }

func (c advanceCmd) String() string { return fmt.Sprintf("Advance(%s)", c.d) }

func (c advanceCmd) Run(sut commands.SystemUnderTest) commands.Result {
	return run(sut, func(s *sysUT, o *observed) { s.clk.Advance(c.d) })
}

func (c advanceCmd) NextState(st commands.State) commands.State {
	s := st.(*mstate).clone()
	s.now = s.now.Add(c.d)
	s.wall += int64(c.d)
	return s
}

func (advanceCmd) PreCondition(commands.State) bool { return true }

func (c advanceCmd) PostCondition(st commands.State, res commands.Result) *gopter.PropResult {
	return check(st, res, nil)
}

// wallJumpCmd steps the wall clock alone. An observed step is what the
// NVR's clock watch reports: the service re-anchors (R-RESTART).
type wallJumpCmd struct {
	by       time.Duration
	observed bool
}

func (c wallJumpCmd) String() string {
	if c.observed {
		return fmt.Sprintf("WallJump(%s, re-anchored)", c.by)
	}
	return fmt.Sprintf("WallJump(%s, unnoticed)", c.by)
}

func (c wallJumpCmd) Run(sut commands.SystemUnderTest) commands.Result {
	return run(sut, func(s *sysUT, o *observed) {
		s.clk.WallJump(c.by)
		if c.observed {
			_, o.err = s.svc.Reanchor(context.Background(), false)
		}
	})
}

func (c wallJumpCmd) NextState(st commands.State) commands.State {
	s := st.(*mstate).clone()
	s.wall += int64(c.by)
	if c.observed {
		s.reanchorAll()
	}
	return s
}

func (wallJumpCmd) PreCondition(commands.State) bool { return true }

func (c wallJumpCmd) PostCondition(st commands.State, res commands.Result) *gopter.PropResult {
	return check(st, res, nil)
}

// restartCmd closes the database (cleanly, re-anchoring first, or as a
// crash would), lets time pass while the device is off, possibly steps its
// wall clock, and opens a new service with a new boot id.
type restartCmd struct {
	down  time.Duration
	jump  time.Duration
	clean bool
}

func (c restartCmd) String() string {
	how := "crash"
	if c.clean {
		how = "clean"
	}
	return fmt.Sprintf("Restart(%s, down %s, wall %+v)", how, c.down, c.jump)
}

func (c restartCmd) Run(sut commands.SystemUnderTest) commands.Result {
	return run(sut, func(s *sysUT, o *observed) {
		if c.clean {
			if _, o.err = s.svc.Reanchor(context.Background(), true); o.err != nil {
				return
			}
		}
		s.svc.Close()
		if o.err = s.db.Close(); o.err != nil {
			return
		}
		s.db, s.svc = nil, nil
		s.clk.Advance(c.down)
		s.clk.WallJump(c.jump)
		s.boot++
		if o.err = s.open(); o.err != nil {
			return
		}
		// Every restart also checks the audit chain survived (R-AUDIT).
		_, o.chain = s.db.VerifyAuditChain(context.Background())
	})
}

func (c restartCmd) NextState(st commands.State) commands.State {
	s := st.(*mstate).clone()
	s.checkInvariant()
	if c.clean {
		s.reanchorAll()
	}
	s.now = s.now.Add(c.down)
	s.wall += int64(c.down) + int64(c.jump)
	s.boot++
	// The new boot restores every key from its snapshot at its first
	// instant (R-RESTART).
	for _, r := range s.refs() {
		s.setKey(r, model.Restore(s.saved[r].Snap, s.now, s.wall))
	}
	return s
}

func (restartCmd) PreCondition(commands.State) bool { return true }

func (c restartCmd) PostCondition(st commands.State, res commands.Result) *gopter.PropResult {
	return check(st, res, func(s *mstate, o *observed) error {
		if o.chain != nil {
			return fmt.Errorf("audit chain after restart: %w", o.chain)
		}
		return nil
	})
}

// passwords is the SUT's record of each account's current password.
func (s *sysUT) passwords() map[model.Principal]string {
	if s.pw == nil {
		s.pw = map[model.Principal]string{"admin": cmdPasswords[0], "oper": cmdPasswords[1], "view": cmdPasswords[2]}
	}
	return s.pw
}

func (s *sysUT) setPassword(pr model.Principal, pw string) { s.passwords()[pr] = pw }

// edges are durations around a policy's boundaries: each of its durations,
// a nanosecond either side, and lock lengths at the first levels.
func edges(p model.Policy) []time.Duration {
	set := map[time.Duration]bool{time.Nanosecond: true, time.Second: true, 10 * time.Second: true,
		30 * time.Second: true, time.Minute: true, 5 * time.Minute: true, time.Hour: true, 24 * time.Hour: true}
	add := func(d time.Duration) {
		if d <= 0 || d > 400*24*time.Hour {
			return
		}
		set[d], set[d-time.Nanosecond], set[d+time.Nanosecond] = true, true, true
	}
	for _, kp := range []model.KeyPolicy{p.Pair, p.Source, p.Principal, p.Console} {
		add(kp.Window)
		add(kp.Cap)
		add(kp.HoldFor)
		add(kp.Decay)
		add(kp.ExtendOnAttempt)
		d := float64(kp.Base)
		for i := 0; i < 4 && d > 0 && time.Duration(d) <= kp.Cap; i++ {
			add(time.Duration(d))
			d *= kp.Growth
		}
	}
	add(p.TrustTTL)
	out := slices.Collect(maps.Keys(set))
	slices.Sort(out)
	return out
}

// wallSteps are the wall-clock steps commands inject: NTP-sized, a year,
// and an RTC reset to 1970.
var wallSteps = []time.Duration{-time.Hour, -30 * time.Second, 30 * time.Second, time.Hour, 365 * 24 * time.Hour,
	-epoch.Sub(time.Unix(0, 0))}

var downtimes = []time.Duration{0, time.Second, time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour}

func commandsFor(p model.Policy) *commands.ProtoCommands {
	ed := edges(p)
	spellings := []string{}
	for _, pr := range cmdPrincipals {
		spellings = append(spellings, cmdSpellings[pr]...)
	}
	// Bursts are an attacker's (wrong secrets only; some repeat, R-REPLAY)
	// or a user's (a typo or two, then the password, or the PIN at the
	// console), concentrated on admin and the unknown ghost.
	genAttack := gen.SliceOfN(6, gen.OneConstOf(toAny(cmdWrong)...))
	genUser := gopter.CombineGens(gen.SliceOfN(2, gen.OneConstOf(toAny(cmdWrong)...)), gen.IntRange(0, 2),
		gen.Weighted([]gen.WeightedGen{{Weight: 3, Gen: gen.Const("right")}, {Weight: 1, Gen: gen.Const("pin")}})).
		Map(func(v []any) []string { return append(v[0].([]string)[:v[1].(int)], v[2].(string)) })
	genSpelling := gen.Weighted([]gen.WeightedGen{
		{Weight: 3, Gen: gen.OneConstOf(toAny(cmdSpellings["admin"])...)},
		{Weight: 2, Gen: gen.OneConstOf(toAny(cmdSpellings["ghost"])...)},
		{Weight: 1, Gen: gen.OneConstOf(toAny(spellings)...)},
	})
	genSecrets := gopter.CombineGens(gen.IntRange(1, 6), gen.Weighted([]gen.WeightedGen{{Weight: 2, Gen: genAttack}, {Weight: 1, Gen: genUser}})).
		Map(func(v []any) []string {
			secrets := v[1].([]string)
			if len(secrets) == 6 { // an attack: n of them
				secrets = secrets[:v[0].(int)]
			}
			return secrets
		})
	genLogin := gopter.CombineGens(genSpelling, gen.IntRange(-1, len(cmdSources)-1), genSecrets).
		Map(func(v []any) commands.Command {
			return loginCmd{spelling: v[0].(string), src: v[1].(int), secrets: v[2].([]string)}
		})
	genAgain := func(last *loginCmd) gopter.Gen {
		if last == nil {
			return genLogin
		}
		return genSecrets.Map(func(secrets []string) commands.Command {
			return loginCmd{spelling: last.spelling, src: last.src, secrets: secrets}
		})
	}
	genUnlock := gopter.CombineGens(gen.OneConstOf("pair", "user", "all"), gen.OneConstOf(toAny(cmdPrincipals)...),
		gen.IntRange(0, len(cmdSources)-1)).Map(func(v []any) commands.Command {
		return unlockCmd{scope: v[0].(string), pr: v[1].(model.Principal), src: v[2].(int)}
	})
	genReset := gopter.CombineGens(gen.OneConstOf(model.Principal("admin"), model.Principal("oper"), model.Principal("view")),
		gen.IntRange(0, len(cmdPasswords)-1)).Map(func(v []any) commands.Command {
		return resetCmd{pr: v[0].(model.Principal), password: v[1].(int)}
	})
	// Mostly steps of at most ten minutes, so locks end, windows slide
	// and escalation builds; sometimes a policy edge, up to days.
	var short []time.Duration
	for _, d := range ed {
		if d <= 10*time.Minute {
			short = append(short, d)
		}
	}
	genAdvance := gen.Weighted([]gen.WeightedGen{
		{Weight: 3, Gen: gen.OneConstOf(toAny(short)...)},
		{Weight: 1, Gen: gen.OneConstOf(toAny(ed)...)},
	}).Map(func(d time.Duration) commands.Command { return advanceCmd{d: d} })
	genJump := gopter.CombineGens(gen.OneConstOf(toAny(wallSteps)...), gen.Bool()).Map(func(v []any) commands.Command {
		return wallJumpCmd{by: v[0].(time.Duration), observed: v[1].(bool)}
	})
	genRestart := gopter.CombineGens(gen.OneConstOf(toAny(downtimes)...), gen.OneConstOf(toAny(append([]time.Duration{0, 0}, wallSteps...))...),
		gen.Bool()).Map(func(v []any) commands.Command {
		return restartCmd{down: v[0].(time.Duration), jump: v[1].(time.Duration), clean: v[2].(bool)}
	})
	return &commands.ProtoCommands{
		NewSystemUnderTestFunc:     func(commands.State) commands.SystemUnderTest { return newSysUT(p) },
		DestroySystemUnderTestFunc: func(sut commands.SystemUnderTest) { sut.(*sysUT).close() },
		InitialStateGen: gopter.Gen(func(*gopter.GenParameters) *gopter.GenResult {
			return gopter.NewGenResult(newModelState(p), gopter.NoShrinker)
		}),
		GenCommandFunc: func(st commands.State) gopter.Gen {
			return gen.Weighted([]gen.WeightedGen{
				{Weight: 6, Gen: genLogin},
				{Weight: 6, Gen: genAgain(st.(*mstate).last)},
				{Weight: 3, Gen: genAdvance},
				{Weight: 3, Gen: genAdvanceToEdge(st.(*mstate))},
				{Weight: 1, Gen: genUnlock},
				{Weight: 1, Gen: genReset},
				{Weight: 1, Gen: genJump},
				{Weight: 1, Gen: genRestart},
			})
		},
	}
}

// genAdvanceToEdge steps time exactly onto, or a nanosecond either side
// of, the next instant at which the model's state changes on its own: a
// lock's end, a failure leaving its window, a level decaying, a source
// ceasing to be familiar, a fingerprint being forgotten.
func genAdvanceToEdge(s *mstate) gopter.Gen {
	var ds []time.Duration
	add := func(at model.Instant) {
		if at == model.Forever {
			return
		}
		for _, d := range []time.Duration{at.Sub(s.now) - 1, at.Sub(s.now), at.Sub(s.now) + 1} {
			if d > 0 {
				ds = append(ds, d)
			}
		}
	}
	p := s.policy
	for _, r := range s.refs() {
		k := s.key(r)
		kp := p.Key(r.Kind)
		if k.Mode != model.Open {
			add(k.Until)
		}
		if k.NFail > 0 {
			add(k.Failures[0].Add(kp.Window))
		}
		if k.Level > 0 && kp.Decay > 0 {
			add(k.QuietFrom.Add(kp.Decay))
		}
		if k.Familiar {
			add(k.LastSuccess.Add(p.TrustTTL))
		}
		if k.NPrints > 0 {
			add(k.Prints[0].Seen.Add(p.Pair.Window))
		}
	}
	if len(ds) == 0 {
		ds = []time.Duration{time.Second}
	}
	slices.Sort(ds)
	ds = slices.Compact(ds)
	return gen.OneConstOf(toAny(ds)...).Map(func(d time.Duration) commands.Command { return advanceCmd{d: d} })
}

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// TestServiceMatchesModel is the stateful property: for every preset, the
// service decides every attempt as model.Decide does, and its database
// holds what R-RESTART's persistence rule says.
func TestServiceMatchesModel(t *testing.T) {
	if _, err := templateDB(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		templates.Lock()
		templates.path = ""
		templates.Unlock()
	})
	type variant struct {
		name, preset string
		set          []string
		tests        int
	}
	variants := []variant{{name: "latch", preset: "latch", tests: 100}, {name: "annke", preset: "annke", tests: 100}}
	for _, n := range model.PresetNames() {
		if n != "latch" && n != "annke" {
			variants = append(variants, variant{name: n, preset: n, tests: 20})
		}
	}
	// Holds take five lock cycles under the presets; these reach them, and
	// their ends, in a few commands.
	variants = append(variants,
		variant{name: "annke-timed-hold", preset: "annke", set: []string{"pair.holdAfter=1", "pair.holdFor=2h"}, tests: 20},
		variant{name: "latch-held-until-unlock", preset: "latch", set: []string{"pair.holdAfter=1", "source.holdAfter=1"}, tests: 20})
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			p, err := model.Preset(v.preset)
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range v.set {
				if err := p.Set(kv); err != nil {
					t.Fatal(err)
				}
			}
			params := gopter.DefaultTestParametersWithSeed(*gopterSeed)
			params.Workers = 1
			params.MinSuccessfulTests = v.tests
			if testing.Short() || raceEnabled {
				// The race detector slows SQLite by an order of magnitude.
				params.MinSuccessfulTests /= 4
				params.MaxSize = 60
			}
			t.Logf("gopter seed %d (rerun with -gopter.seed=%d)", *gopterSeed, *gopterSeed)
			props := gopter.NewProperties(params)
			props.Property(v.name, commands.Prop(commandsFor(p)))
			props.TestingRun(t)
		})
	}
}
