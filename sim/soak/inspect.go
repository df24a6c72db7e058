package soak

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

// openRaw opens the database with plain SQL, beside the server or while
// it is down: read-only unless write.
func openRaw(path string, write bool) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	dsn := "file:" + esc + "?_pragma=busy_timeout(10000)"
	if !write {
		dsn += "&_pragma=query_only(1)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// readKey reads one key's state blob.
func readKey(path string, id store.KeyID) ([]byte, error) {
	db, err := openRaw(path, false)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var state []byte
	err = db.QueryRow(`SELECT state FROM key_states WHERE kind = ? AND principal = ? AND source = ?`,
		string(id.Kind), id.Principal, id.Source).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key %s not in the database", id)
	}
	return state, err
}

// readDeviceKey reads the device secret the server keys fingerprints with.
func readDeviceKey(path string) ([]byte, error) {
	db, err := openRaw(path, false)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var k []byte
	if err := db.QueryRow(`SELECT device_secret FROM device WHERE id = 1`).Scan(&k); err != nil {
		return nil, fmt.Errorf("device secret: %w", err)
	}
	return k, nil
}

func readAllKeys(db *sql.DB) ([]dbKey, error) {
	rows, err := db.Query(`SELECT kind, principal, source, state FROM key_states`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dbKey
	for rows.Next() {
		var r dbKey
		var kind string
		if err := rows.Scan(&kind, &r.id.Principal, &r.id.Source, &r.state); err != nil {
			return nil, err
		}
		r.id.Kind = store.KeyKind(kind)
		if r.sk, err = auth.DecodeKey(r.state); err != nil {
			return nil, fmt.Errorf("key %s: %w", r.id, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// inspect checks the database and the recordings while the server is
// down: PRAGMA integrity_check (store.Open), the audit hash chain, every
// key against the shadow, the answers against the audit log, and the
// segment index against the files.
func (e *Engine) inspect(final bool) {
	ended := e.boots[e.boot-1]
	ctx, cancel := waitCtx(5 * time.Minute)
	defer cancel()
	sdb, err := store.Open(e.dbPath(), store.Options{})
	if err != nil {
		e.problem("after boot %d (%s): open with integrity_check: %v", ended.Boot, ended.EndedBy, err)
		return
	}
	defer sdb.Close()
	if n, err := sdb.VerifyAuditChain(ctx); err != nil {
		e.problem("after boot %d: audit chain: %v", ended.Boot, err)
	} else {
		e.rep.Audit.Verified = n
	}
	raw, err := openRaw(e.dbPath(), false)
	if err != nil {
		e.problem("after boot %d: %v", ended.Boot, err)
		return
	}
	defer raw.Close()
	rows, err := readAllKeys(raw)
	if err != nil {
		e.problem("after boot %d: read keys: %v", ended.Boot, err)
	} else {
		e.reconcile(rows, ended)
		e.checkNoise(rows, ended)
		if final {
			e.rep.Keys.AtEnd = len(rows)
		}
	}
	e.checkAudit(ctx, raw, ended)
	e.checkRecordings(ctx, sdb, ended, final)
}

// checkAudit reconciles the answers received with the audit log: every
// 200, 401 and 429 the engine got is a committed record (R-ATOMIC: the
// server answers after its commit), no more, no fewer; and for the
// concurrent noise, every answered one is recorded and nothing is
// recorded that was not sent.
func (e *Engine) checkAudit(ctx context.Context, db *sql.DB, ended *BootInfo) {
	q := `SELECT outcome, COALESCE(SUM(count), 0) FROM audit_log
	       WHERE channel = 'remote' AND key_kind = '' AND outcome IN ('success', 'wrong_secret', 'repeat')
	         AND principal %s LIKE 'soaknoise-%%' AND principal NOT LIKE 'soakprobe-%%' GROUP BY outcome
	      UNION ALL
	      SELECT 'refused', COALESCE(SUM(count), 0) FROM audit_log
	       WHERE channel = 'remote' AND outcome = 'refused'
	         AND principal %s LIKE 'soaknoise-%%' AND principal NOT LIKE 'soakprobe-%%'`
	count := func(not string) (map[string]int64, error) {
		rows, err := db.QueryContext(ctx, fmt.Sprintf(q, not, not))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		m := map[string]int64{}
		for rows.Next() {
			var o string
			var n int64
			if err := rows.Scan(&o, &n); err != nil {
				return nil, err
			}
			m[o] += n
		}
		return m, rows.Err()
	}
	own, err := count("NOT")
	if err != nil {
		e.problem("after boot %d: audit counts: %v", ended.Boot, err)
		return
	}
	a := &e.rep.Audit
	a.Success, a.WrongSecret, a.Refused = own["success"], own["wrong_secret"]+own["repeat"], own["refused"]
	if a.Success != e.rep.Status200 || a.WrongSecret != e.rep.Status401 || a.Refused != e.rep.Status429 {
		e.problem("after boot %d: the audit log holds %d successes, %d wrong secrets, %d refusals; the engine was answered %d 200, %d 401, %d 429",
			ended.Boot, a.Success, a.WrongSecret, a.Refused, e.rep.Status200, e.rep.Status401, e.rep.Status429)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_log`).Scan(&a.Rows); err != nil {
		e.problem("after boot %d: %v", ended.Boot, err)
	}
	nz, err := count("")
	if err != nil {
		e.problem("after boot %d: audit counts: %v", ended.Boot, err)
		return
	}
	n := &e.rep.Noise
	n.Rec401, n.Rec429 = nz["wrong_secret"]+nz["repeat"], nz["refused"]
	if n.Rec401 < n.Got401 || n.Rec429 < n.Got429 || n.Rec401+n.Rec429 > n.Got401+n.Got429+n.Unanswered {
		e.problem("after boot %d: noise: answered %d 401 and %d 429 (%d unanswered), the audit log holds %d and %d",
			ended.Boot, n.Got401, n.Got429, n.Unanswered, n.Rec401, n.Rec429)
	}
}

// checkRecordings compares the segment index with the files: every
// indexed segment's file exists with its size; a file neither indexed nor
// in the garbage list is an orphan, which only a kill may leave (a segment
// made durable and renamed, then killed before its index commit), at most
// two per camera per kill, never at a clean stop.
func (e *Engine) checkRecordings(ctx context.Context, db *store.DB, ended *BootInfo, final bool) {
	segs, err := db.OldestSegments(ctx, -1)
	if err != nil {
		e.problem("after boot %d: segments: %v", ended.Boot, err)
		return
	}
	garbage, err := db.ListGarbage(ctx)
	if err != nil {
		e.problem("after boot %d: garbage: %v", ended.Boot, err)
		return
	}
	known := map[string]bool{}
	st := &e.rep.Segments
	st.Indexed, st.Bytes, st.Garbage = len(segs), 0, len(garbage)
	var maxID int64
	for _, s := range segs {
		known[s.Path] = true
		st.Bytes += s.Bytes
		maxID = max(maxID, s.ID)
		fi, err := os.Stat(filepath.Join(e.dataDir(), filepath.FromSlash(s.Path)))
		switch {
		case err != nil:
			e.problem("after boot %d: indexed segment %d (%s) has no file: %v", ended.Boot, s.ID, s.Path, err)
		case fi.Size() != s.Bytes:
			e.problem("after boot %d: segment %d (%s) is %d bytes on disk, %d in the index", ended.Boot, s.ID, s.Path, fi.Size(), s.Bytes)
		}
	}
	for _, g := range garbage {
		known[g.Path] = true
		maxID = max(maxID, g.SegmentID)
	}
	if len(e.segMaxID) > 0 {
		maxID = max(maxID, e.segMaxID[len(e.segMaxID)-1])
	}
	e.segMaxID = append(e.segMaxID, maxID)
	st.MaxID = maxID
	st.Deleted = maxID - int64(len(segs)) - int64(len(garbage))
	// Files the index does not name, by camera folder: temp files (the
	// open segment and finished ones not yet renamed: a kill leaves them,
	// the next boot removes them) and orphans (renamed, not indexed).
	orphans, temps := 0, 0
	camOrphans, camTemps := map[string]int{}, map[string]int{}
	root := filepath.Join(e.dataDir(), "recordings")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		cam := filepath.Base(filepath.Dir(p))
		if strings.HasPrefix(d.Name(), ".") {
			temps++
			camTemps[cam]++
			return nil
		}
		rel, _ := filepath.Rel(e.dataDir(), p)
		if !known[filepath.ToSlash(rel)] {
			orphans++
			camOrphans[cam]++
		}
		return nil
	})
	st.TempFiles = temps
	newOrphans := orphans - e.orphans
	ended.Unfinished = map[string]int{}
	for cam, n := range camTemps {
		ended.Unfinished[cam] += n
	}
	for cam, n := range camOrphans {
		if d := n - e.camOrphans[cam]; d > 0 {
			ended.Unfinished[cam] += d
		}
	}
	e.orphans, e.camOrphans, st.Orphans = orphans, camOrphans, orphans
	switch {
	case ended.EndedBy == Kill.String() && newOrphans > 2*e.opt.Cameras:
		e.problem("after boot %d: %d new orphan segment files after a kill (at most %d expected)", ended.Boot, newOrphans, 2*e.opt.Cameras)
	case ended.EndedBy != Kill.String() && newOrphans > 0:
		e.problem("after boot %d: %d new orphan segment files after a clean stop", ended.Boot, newOrphans)
	case final && temps > 0:
		e.problem("after the final clean stop: %d unfinished temp segment files left", temps)
	}
	if final && e.opt.CheckGaps {
		e.checkGaps(segs)
	}
}

// checkGaps checks recording continuity from the index, and from the
// frames where the index cannot tell (frames.go).
//
// Within one boot each camera's consecutive segments abut exactly: the
// next starts at the previous start instant plus its duration (instants
// are the server's monotonic clock, so no wall step can fake or hide a
// gap). A gap is a whole number of slots (the recorder keeps its grid),
// and it is one of two things, told apart by the frame numbers on its
// two sides: consecutive, the camera captured nothing in between (a
// stall: the process did not run for a slot, 0.9 s of real time at warp
// 1000, and a camera cannot film the past); not consecutive, frames were
// captured and their segment lost, which fails the run. Each stall is
// then attributed (attributeStall): to the host when the server's
// threads were waiting for a CPU, or its VM's CPUs were stolen, for at
// least half of it; otherwise to the server (the soak bounds those).
//
// Across a stop, instants restart; there the loss is bounded instead: the
// last segment of the ended boot ends at most a frame interval before a
// clean stop (which closes the open segment); after a kill, at most as
// many slots as the files the kill left unfinished for the camera (the
// segment being recorded and those waiting to be made durable or
// indexed; at least two are allowed). The first segment of a boot starts
// with the camera's frame #0 (nothing recorded at the start was lost),
// within a frame interval of the boot's restore instant unless the host
// explains the delay. Everything in between is the downtime. Slack for
// scheduling: a real second of virtual time.
func (e *Engine) checkGaps(segs []store.Segment) {
	frame := time.Duration(float64(time.Second) / e.opt.FPS)
	slack := time.Duration(e.opt.Warp * float64(time.Second))
	seg := int64(e.opt.Segment)
	perSeg := seg / int64(frame)
	bootOf := func(id int64) int {
		for i, m := range e.segMaxID {
			if id <= m {
				return i
			}
		}
		return len(e.segMaxID) - 1
	}
	file := func(s store.Segment) string { return filepath.Join(e.dataDir(), filepath.FromSlash(s.Path)) }
	byCam := map[int64][]store.Segment{}
	for _, s := range segs {
		byCam[s.CameraID] = append(byCam[s.CameraID], s)
	}
	cams := make([]int64, 0, len(byCam))
	for c := range byCam {
		cams = append(cams, c)
	}
	sort.Slice(cams, func(i, j int) bool { return cams[i] < cams[j] })
	if len(cams) != e.opt.Cameras {
		e.problem("%d cameras recorded, %d configured", len(cams), e.opt.Cameras)
	}
	st := &e.rep.Segments
	for _, c := range cams {
		ss := byCam[c]
		dir := path.Base(path.Dir(ss[0].Path))
		for i := range ss {
			b := bootOf(ss[i].ID)
			if i == 0 || bootOf(ss[i-1].ID) != b {
				// The first segment of a boot: the camera's first frame,
				// within a frame of the boot's start.
				if sf, err := readSegmentFrames(file(ss[i])); err != nil {
					e.problem("camera %s, boot %d: cannot read the frame numbers of its first segment: %v", dir, b+1, err)
				} else if sf.first != 0 {
					e.problem("camera %s, boot %d: the first segment (%d) starts with frame #%d: %d frames recorded at the start are in no segment",
						dir, b+1, ss[i].ID, sf.first, sf.first)
				}
				if b > 0 && b < len(e.boots) {
					bi := e.boots[b]
					head := time.Duration(ss[i].StartInstantNS - bi.BootInstant)
					st.MaxHead = max(st.MaxHead, head)
					st.Boundaries++
					if head > frame+slack {
						if host, why := e.attributeStall(bi, bi.BootInstant, ss[i].StartInstantNS); host {
							st.HostLateStarts++
							e.logf("camera %s, boot %d: first segment %s after the boot; %s", dir, b+1, head, why)
						} else {
							e.problem("camera %s: boot %d's first segment starts %s after the boot; %s", dir, b+1, head, why)
						}
					}
				}
				if i > 0 {
					pb := bootOf(ss[i-1].ID)
					p := ss[i-1]
					tail := time.Duration(e.boots[pb].KillInstant - p.StartInstantNS - p.DurationNS)
					st.MaxTail = max(st.MaxTail, tail)
					allowed := frame + slack
					if e.boots[pb].EndedBy == Kill.String() {
						allowed += time.Duration(max(2, e.boots[pb].Unfinished[dir])) * e.opt.Segment
					}
					if tail > allowed {
						e.problem("camera %s: boot %d (%s) lost %s of recording before it stopped (at most %s allowed: %d unfinished files)",
							dir, pb+1, e.boots[pb].EndedBy, tail, allowed, e.boots[pb].Unfinished[dir])
					}
				}
				continue
			}
			st.Checked++
			p := ss[i-1]
			if want := p.StartInstantNS + p.DurationNS; ss[i].StartInstantNS != want {
				e.checkGap(dir, b, p, ss[i], file)
			}
			// A whole segment (not a boot's first): did the camera keep up?
			if ss[i].DurationNS == seg && i+1 < len(ss) && bootOf(ss[i+1].ID) == b {
				st.Full++
				if ss[i].Frames < perSeg-1 {
					st.Short++
				}
				if st.MinFrames == 0 || ss[i].Frames < st.MinFrames {
					st.MinFrames = ss[i].Frames
				}
			}
		}
	}
}

// checkGap classifies the gap between segments p and n of one camera in
// boot index b (see checkGaps).
func (e *Engine) checkGap(dir string, b int, p, n store.Segment, file func(store.Segment) string) {
	st := &e.rep.Segments
	end := p.StartInstantNS + p.DurationNS
	gap := time.Duration(n.StartInstantNS - end)
	if gap < 0 || int64(gap)%int64(e.opt.Segment) != 0 {
		e.problem("camera %s, boot %d: segment %d starts at instant %d, %s after segment %d ends (%d): not a whole number of slots",
			dir, b+1, n.ID, n.StartInstantNS, gap, p.ID, end)
		return
	}
	pf, err := readSegmentFrames(file(p))
	if err == nil {
		var nf segmentFrames
		if nf, err = readSegmentFrames(file(n)); err == nil {
			switch {
			case pf.n != p.Frames || nf.n != n.Frames:
				e.problem("camera %s, boot %d: segments %d and %d hold %d and %d frames, the index says %d and %d",
					dir, b+1, p.ID, n.ID, pf.n, nf.n, p.Frames, n.Frames)
				return
			case nf.first <= pf.last:
				e.problem("camera %s, boot %d: segment %d begins with frame #%d, segment %d before it ends with #%d: frame numbers went back",
					dir, b+1, n.ID, nf.first, p.ID, pf.last)
				return
			case nf.first != pf.last+1:
				e.problem("camera %s, boot %d: %s gap after segment %d: frames #%d…#%d were captured and are in no segment (a segment is missing)",
					dir, b+1, gap, p.ID, pf.last+1, int64(nf.first)-1)
				return
			}
		}
	}
	if err != nil {
		e.problem("camera %s, boot %d: %s gap after segment %d, and its frames cannot be read to tell a stall from a lost segment: %v",
			dir, b+1, gap, p.ID, err)
		return
	}
	// Frames #pf.last and #pf.last+1 are on either side: a stall.
	st.StallGaps++
	st.StallGapTime += gap
	bi := e.boots[b]
	host, why := e.attributeStall(bi, end, n.StartInstantNS)
	if host {
		st.HostStallGapTime += gap
	}
	e.logf("camera %s, boot %d: stall gap of %s after segment %d (frames #%d and #%d on either side); %s",
		dir, b+1, gap, p.ID, pf.last, pf.last+1, why)
}

// attributeStall says whether the host explains a stretch of boot b (from
// instant a to instant z) in which the server did not run: its threads
// waited for a CPU (run-queue wait, /proc/PID/task/*/schedstat), or the
// hypervisor ran something else on the VM's CPUs (steal), for at least
// half of it, between the RSS samples around it.
func (e *Engine) attributeStall(b *BootInfo, a, z int64) (host bool, why string) {
	from, to := e.realOf(b, a), e.realOf(b, z)
	e.rssMu.Lock()
	var s []RSSSample
	for _, x := range e.rss {
		if x.Boot == b.Boot {
			s = append(s, x)
		}
	}
	e.rssMu.Unlock()
	if len(s) == 0 {
		return false, "no samples of the server's scheduling to tell whose stall it was"
	}
	// From the last sample at or before from (or the process's start:
	// run-queue wait counts from 0), to the first at or after to (or the
	// boot's last sample).
	t0, wait0, steal0 := b.StartReal, 0.0, b.StealAtStartMs
	end := s[len(s)-1]
	for _, x := range s {
		if x.RealSeconds <= from {
			t0, wait0, steal0 = x.RealSeconds, x.RunWaitMs, x.StealMs
		}
	}
	for i := len(s) - 1; i >= 0 && s[i].RealSeconds >= to; i-- {
		end = s[i]
	}
	wait, steal := (end.RunWaitMs-wait0)/1000, (end.StealMs-steal0)/1000
	d := to - from
	host = wait+steal >= d/2
	who := "the server's"
	if host {
		who = "the host's"
	}
	return host, fmt.Sprintf("%.2f s real; in the %.2f s around it the server's threads waited %.2f s for a CPU and the VM lost %.2f s to steal: %s",
		d, end.RealSeconds-t0, wait, steal, who)
}

// finish fills in the run's totals.
func (e *Engine) finish() {
	e.rep.Boots = e.boots
	e.rep.RealSeconds = time.Since(e.began).Seconds()
	e.rep.VirtualSeconds = time.Duration(e.simNow.Load()).Seconds()
	if e.rep.RealSeconds > 0 {
		e.rep.Speedup = e.rep.VirtualSeconds / e.rep.RealSeconds
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(e.dbPath() + suffix); err == nil {
			e.rep.DBBytes += fi.Size()
		}
	}
}

// downgradeToV1 takes a stopped server's database back to schema version
// 1 with its data, undoing the later migrations (nvr/store/migrations):
// 0003 added sessions.source and the recovery tokens, 0002 the
// notification outbox.
func downgradeToV1(path string) error {
	db, err := openRaw(path, true)
	if err != nil {
		return err
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	undo := map[int][]string{
		3: {`DROP INDEX recovery_tokens_by_user`, `DROP TABLE recovery_tokens`, `ALTER TABLE sessions DROP COLUMN source`},
		2: {`DROP TABLE outbox`},
	}
	if v > 3 {
		return fmt.Errorf("schema version %d: the soak does not know how to undo migrations after 0003", v)
	}
	for ; v > 1; v-- {
		for _, q := range undo[v] {
			if _, err := db.Exec(q); err != nil {
				return fmt.Errorf("undo migration %04d: %s: %w", v, q, err)
			}
		}
	}
	_, err = db.Exec(`PRAGMA user_version = 1`)
	return err
}

// CreateV1 makes a database at schema version 1, as the previous firmware
// left a new one: migration 0001 (read from the source tree) and
// user_version 1 (what store.OpenAtVersion does in the store's tests).
func CreateV1(path, migration0001 string) error {
	sqlText, err := os.ReadFile(migration0001)
	if err != nil {
		return err
	}
	db, err := openRaw(path, true)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(string(sqlText)); err != nil {
		tx.Rollback()
		return fmt.Errorf("0001: %w", err)
	}
	if _, err := tx.Exec(`PRAGMA user_version = 1`); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
