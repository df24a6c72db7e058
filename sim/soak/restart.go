package soak

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

// syntheticBoot is the boot id of the probe keys the engine plants: the
// server's boot ids are odd, so an even one never collides.
const syntheticBoot = 2

// restart stops the server (kill -9, SIGTERM, or SIGTERM with a schema
// downgrade), checks the database, relaunches it on the same data folder
// and re-anchors the shadow at the new boot.
func (e *Engine) restart(now model.Instant, kind FaultKind) {
	var nz *noise
	if kind == Kill && e.opt.Noise {
		nz = e.startNoise(4)
		// Let the concurrent logins get going, for a seeded while.
		time.Sleep(time.Duration(5+e.rng.IntN(40)) * time.Millisecond)
	}
	stopped := time.Now()
	e.stopServer(kind, kind.String())
	if nz != nil {
		e.waitNoise(nz)
	}
	switch kind {
	case Kill:
		e.rep.Kills++
	case Term:
		e.rep.Terms++
	case Downgrade:
		e.rep.Downgrades++
	}
	e.inspect(false)
	if kind == Downgrade {
		if err := downgradeToV1(e.dbPath()); err != nil {
			e.problem("boot %d: downgrade: %v", e.boot, err)
		}
	}
	if err := e.plantProbes(); err != nil {
		e.problem("boot %d: plant probe keys: %v", e.boot, err)
	}
	s, err := e.startServer()
	if err != nil {
		e.problem("relaunch: %v", err)
		panic(fmt.Sprintf("soak: cannot relaunch the server: %v", err))
	}
	e.srv = s
	b := e.newBoot(s, now)
	e.boots = append(e.boots, b)
	e.boots[len(e.boots)-2].DownReal = time.Since(stopped)
	if err := e.measureBoot(b); err != nil {
		e.problem("boot %d: measuring the boot clock: %v", e.boot, err)
	}
	e.restoreShadow(b.BootInstant, b.BootWall)
	e.admin = adminSession{} // sign in again: the first act will
	e.steps = 0              // a new process starts with the real wall clock
	e.anchor(now)
	e.logf("boot %d: %s after %s at %s (down %s real)", e.boot, s.url, kind, fmtDur(time.Duration(now)), e.boots[len(e.boots)-2].DownReal.Round(time.Millisecond))
}

// stopServer ends the current boot.
func (e *Engine) stopServer(kind FaultKind, why string) {
	s := e.srv
	b := e.boots[e.boot-1]
	b.LastInstant = e.lastInst
	b.KillInstant = e.lastInst + int64(float64(time.Since(e.lastSeen))*e.opt.Warp)
	b.EndedBy = why
	b.RealSeconds = time.Since(b.started).Seconds()
	if kind == Kill {
		s.kill()
	} else if err := s.term(30 * time.Second); err != nil {
		e.problem("%v", err)
	}
	b.Reanchors = s.stepLines()
	for _, l := range s.errors() {
		e.problem("boot %d logged an error: %s", s.boot, l)
	}
}

// plantProbes writes two pair keys the next boot will restore, each with
// a source that became familiar one second before its save (familiarity
// lasts the policy's trustTTL, 30 days under latch, so it survives however
// long a warped boot takes): one anchored far in the future (a restore
// serves it no time: it gives the boot instant), one anchored a second
// before now (the wall clock at the boot is later: it is served the
// difference, which gives the boot wall time).
func (e *Engine) plantProbes() error {
	ctx, cancel := waitCtx(time.Minute)
	defer cancel()
	db, err := store.Open(e.dbPath(), store.Options{QuickCheck: true})
	if err != nil {
		return err
	}
	defer db.Close()
	n := e.boot + 1
	// Any wall time before the relaunch is before the boot's wall clock.
	e.planted = time.Now().UnixNano() - int64(time.Second)
	return db.WithTx(ctx, func(tx *store.Tx) error {
		for i, anchor := range []int64{math.MaxInt64 / 2, e.planted} {
			var k model.Pair
			k.Familiar, k.LastSuccess = true, -model.Instant(time.Second)
			sk := auth.StoredKey{Snapshot: model.Snapshot{Pair: k, WallAnchor: anchor}, BootID: syntheticBoot}
			_, err := tx.PutKeyState(ctx, store.KeyState{KeyID: probeKey(n, i),
				Mode: store.ModeOpen, State: auth.EncodeKey(sk), WallAnchorNS: anchor})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// probeKey is the i-th probe key of a boot: an unknown principal from a
// documentation IPv6 /64 of its own.
func probeKey(boot, i int) store.KeyID {
	return store.KeyID{Kind: store.KindPair, Principal: fmt.Sprintf("soakprobe-%d-%d", boot, i), Source: probeSource(boot, i).String()}
}

func probeSource(boot, i int) model.Source {
	return model.SourceOf(mustAddr(fmt.Sprintf("2001:db8:%x:%d::1", boot, i+1)))
}

// measureBoot finds, exactly, the instant and wall time the new boot
// restores earlier boots' keys at (auth.Service's boot clock): one wrong
// login on each probe key makes the server restore it and write it back;
// the restored familiarity's instant, read from the database, is the boot
// instant minus the time served.
func (e *Engine) measureBoot(b *BootInfo) error {
	var got [2]auth.StoredKey
	for i := range got {
		id := probeKey(b.Boot, i)
		ans, err := e.login(e.srv.url, id.Principal, Password("probe"), fmt.Sprintf("2001:db8:%x:%d::1", b.Boot, i+1))
		if err != nil {
			return err
		}
		if ans.status != http.StatusUnauthorized {
			return fmt.Errorf("probe %s: %s", id, describeAnswer(ans))
		}
		e.seen(ans.instant, ans.wall)
		ks, err := readKey(e.dbPath(), id)
		if err != nil {
			return fmt.Errorf("probe %s: %w", id, err)
		}
		if got[i], err = auth.DecodeKey(ks); err != nil {
			return err
		}
		if p := got[i].Snapshot.Pair; !p.Familiar || p.NFail != 1 || got[i].SavedAt != model.Instant(ans.instant) {
			return fmt.Errorf("probe %s: want a familiar pair with 1 failure saved at %d, got %s saved at %d",
				id, ans.instant, fmtPair(p), got[i].SavedAt)
		}
	}
	since := func(sk auth.StoredKey) int64 { return int64(sk.Snapshot.Pair.LastSuccess + sk.SavedAt) }
	b.BootID = got[0].BootID
	b.BootInstant = since(got[0]) + int64(time.Second)
	served := b.BootInstant - int64(time.Second) - since(got[1])
	b.BootWall = e.planted + served
	if got[1].BootID != b.BootID || served <= 0 || b.BootInstant > e.lastInst || b.BootWall < e.srv.execWall-int64(2*time.Second) {
		return fmt.Errorf("implausible boot clock: instant %d, wall %d, served %d (boot ids %x %x)", b.BootInstant, b.BootWall, served, got[0].BootID, got[1].BootID)
	}
	return nil
}

// learnBootID reads the boot id of the running server from the key its
// admin login just wrote.
func (e *Engine) learnBootID() error {
	ks, err := readKey(e.dbPath(), store.KeyID{Kind: store.KindPair, Principal: adminUser, Source: adminSource.String()})
	if err != nil {
		return err
	}
	sk, err := auth.DecodeKey(ks)
	if err != nil {
		return err
	}
	e.boots[e.boot-1].BootID = sk.BootID
	return nil
}

// noise is concurrent logins of principals outside the simulation, so a
// kill (or a wall step's re-anchor) lands on requests in flight. Each
// episode uses names and addresses of its own, so its keys are written by
// one boot only, and every failure it was answered (401) must be
// persisted at exactly the instant the server answered for it.
type noise struct {
	stop                                chan struct{}
	wg                                  sync.WaitGroup
	sent, got401, got429, other, unsure atomic.Int64
	mu                                  sync.Mutex
	acked                               []noiseFailure
}

// noiseFailure is one acknowledged failure of the noise.
type noiseFailure struct {
	id      store.KeyID
	instant int64
}

func (e *Engine) startNoise(clients int) *noise {
	n := &noise{stop: make(chan struct{})}
	base := e.srv.url
	e.noiseEpisode++
	ep := e.noiseEpisode
	for g := range clients {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			k := (ep*8 + g) % 512
			for i := 0; ; i++ {
				select {
				case <-n.stop:
					return
				default:
				}
				n.sent.Add(1)
				user := fmt.Sprintf("soaknoise-%d-%d-%d", ep, g, i%16)
				src := fmt.Sprintf("198.%d.%d.%d", 18+k/256, k%256, i%250+1)
				ans, err := e.login(base, user, Password(fmt.Sprintf("noise.%d.%d.%d", ep, g, i)), src)
				if err != nil {
					n.unsure.Add(1) // never answered: maybe decided, maybe not
					select {
					case <-n.stop:
						return
					case <-time.After(time.Millisecond):
					}
					continue
				}
				switch ans.status {
				case http.StatusUnauthorized:
					n.got401.Add(1)
					s, _ := model.ParseSource(src)
					n.mu.Lock()
					n.acked = append(n.acked, noiseFailure{id: store.KeyID{Kind: store.KindPair, Principal: user, Source: s.String()}, instant: ans.instant})
					n.mu.Unlock()
				case http.StatusTooManyRequests:
					n.got429.Add(1)
				default:
					n.other.Add(1)
				}
			}
		}()
	}
	return n
}

// wait stops the noise and adds what it did to the report.
func (e *Engine) waitNoise(n *noise) {
	close(n.stop)
	n.wg.Wait()
	e.rep.Noise.Sent += n.sent.Load()
	e.rep.Noise.Got401 += n.got401.Load()
	e.rep.Noise.Got429 += n.got429.Load()
	e.rep.Noise.GotOther += n.other.Load()
	e.rep.Noise.Unanswered += n.unsure.Load()
	e.noiseAcked = append(e.noiseAcked, n.acked...)
}

// checkNoise checks, with the server down, that every failure the noise
// was answered for since the last check is in its pair key, at exactly the
// instant the server answered (a re-anchor or a restart that moved it, or
// a kill that lost it, shows here).
func (e *Engine) checkNoise(rows []dbKey, ended *BootInfo) {
	byID := make(map[store.KeyID]*dbKey, len(rows))
	for i := range rows {
		byID[rows[i].id] = &rows[i]
	}
	bad := 0
	for _, f := range e.noiseAcked {
		e.rep.Noise.Checked++
		r, ok := byID[f.id]
		if !ok {
			bad++
			e.problem("after boot %d: noise key %s answered a failure at %d but is not in the database", ended.Boot, f.id, f.instant)
			continue
		}
		p := model.Restore(r.sk.Snapshot, r.sk.SavedAt, r.sk.Snapshot.WallAnchor)
		found := false
		for _, t := range p.Failures[:p.NFail] {
			found = found || int64(t) == f.instant
		}
		if !found && p.Mode == model.Open && bad < 20 {
			e.problem("after boot %d: noise key %s answered a failure at instant %d; persisted %s (saved at %d by boot id %x)",
				ended.Boot, f.id, f.instant, fmtPair(p), r.sk.SavedAt, r.sk.BootID)
		}
		if !found && p.Mode == model.Open {
			bad++
		}
	}
	e.noiseAcked = e.noiseAcked[:0]
}

func fmtDur(d time.Duration) string { return d.Round(time.Second).String() }
