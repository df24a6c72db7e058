package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Channel is where an audited act came from (SPEC §1), plus "system" for
// acts of the NVR itself (decay, sealing, policy load at start-up).
type Channel string

// The channels the schema accepts.
const (
	ChannelRemote  Channel = "remote"
	ChannelConsole Channel = "console"
	ChannelSystem  Channel = "system"
)

// AuditRecord is one audit log row (SPEC R-AUDIT). The auth service fills
// the descriptive fields; the store assigns ID, Seq, the hashes and, for
// plain records, Count/FirstWallNS/LastWallNS.
type AuditRecord struct {
	ID        int64 // assigned by the store
	Seq       int64 // chain position; 0 while an aggregate is open
	WallNS    int64 // unix ns, for people
	InstantNS int64 // monotonic ns (SPEC R-MONO)
	Principal string
	Source    string
	KeyKind   KeyKind // "" when the record is not about one key
	Channel   Channel
	Actor     string // who did it, for admin acts (SPEC R-UNLOCK); "" for attempts
	Outcome   string // the auth service's vocabulary: "success", "wrong_secret", "refused", "unlock", ...
	Reason    string
	// Detail is a JSON value (key modes after, policy diff, ...) or nil.
	Detail json.RawMessage
	// Count, FirstWallNS and LastWallNS summarise an aggregate of refusals;
	// a plain record has Count 1 and both equal to WallNS.
	Count       int64
	FirstWallNS int64
	LastWallNS  int64
	// Aggregate is set on rows written by AppendOrAggregateRefusal;
	// MinuteBucket is then the caller's minute number.
	Aggregate    bool
	MinuteBucket int64
	PrevHash     []byte // nil while an aggregate is open
	Hash         []byte // nil while an aggregate is open
}

// auditTag separates this encoding from any other SHA-256 input and names
// its version; a future encoding gets a new tag.
const auditTag = "latch/audit/v1\x00"

// auditDigest is SHA-256(prev || canonical encoding of r). The encoding is
// fixed-width big-endian integers and length-prefixed strings in a fixed
// field order, so distinct rows can never encode alike. ID is left out:
// the chain's order is Seq, and Seq is in.
func auditDigest(prev []byte, r *AuditRecord) [sha256.Size]byte {
	var buf [512]byte // one allocation-free pass for typical rows
	b := append(buf[:0], prev...)
	b = append(b, auditTag...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(r.WallNS))
	b = binary.BigEndian.AppendUint64(b, uint64(r.InstantNS))
	b = appendString(b, r.Principal)
	b = appendString(b, r.Source)
	b = appendString(b, string(r.KeyKind))
	b = appendString(b, string(r.Channel))
	b = appendString(b, r.Actor)
	b = appendString(b, r.Outcome)
	b = appendString(b, r.Reason)
	if r.Detail == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Detail)))
		b = append(b, r.Detail...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Count))
	b = binary.BigEndian.AppendUint64(b, uint64(r.FirstWallNS))
	b = binary.BigEndian.AppendUint64(b, uint64(r.LastWallNS))
	if r.Aggregate {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, uint64(r.MinuteBucket))
	} else {
		b = append(b, 0)
	}
	return sha256.Sum256(b)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// detailArg binds Detail as TEXT (a []byte would bind as a BLOB, which the
// STRICT TEXT column refuses) or NULL.
func detailArg(d json.RawMessage) any {
	if d == nil {
		return nil
	}
	return string(d)
}

type auditHead struct {
	seq   int64
	rowID int64
	hash  []byte
}

var (
	sqlReadAuditHead = hot(`SELECT seq, row_id, hash FROM audit_head WHERE id = 1`)
	sqlSetAuditHead  = hot(`UPDATE audit_head SET seq = ?, row_id = ?, hash = ? WHERE id = 1`)
	sqlAppendAudit   = hot(`
		INSERT INTO audit_log (seq, wall_ns, instant_ns, principal, source, key_kind, channel, actor,
		                       outcome, reason, detail, count, first_wall_ns, last_wall_ns, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`)
	sqlInsertAggregate = hot(`
		INSERT INTO audit_log (wall_ns, instant_ns, principal, source, key_kind, channel, actor, outcome,
		                       reason, detail, count, first_wall_ns, last_wall_ns, minute_bucket)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	// The bump of an open aggregate whose id db.open remembers: found by
	// primary key; seq IS NULL makes a sealed row (which the trigger would
	// refuse to change) a miss rather than an error.
	sqlBumpByID          = hot(`UPDATE audit_log SET count = count + ?, last_wall_ns = ? WHERE id = ? AND seq IS NULL`)
	sqlBumpByIDReturning = hot(`UPDATE audit_log SET count = count + ?, last_wall_ns = ? WHERE id = ? AND seq IS NULL RETURNING count`)
	sqlSealAggregate     = hot(`UPDATE audit_log SET seq = ?, prev_hash = ?, hash = ?
		WHERE id = ? AND seq IS NULL AND count = ? AND last_wall_ns = ?`)
)

func readAuditHead(ctx context.Context, q queryer) (auditHead, error) {
	var h auditHead
	err := q.QueryRowContext(ctx, sqlReadAuditHead).Scan(&h.seq, &h.rowID, &h.hash)
	return h, wrap("read audit head", err)
}

func (tx *Tx) setAuditHead(ctx context.Context, h auditHead) error {
	_, err := tx.q.ExecContext(ctx, sqlSetAuditHead, h.seq, h.rowID, h.hash)
	return wrap("update audit head", err)
}

// AppendAudit appends a plain (not aggregated) record to the chain and
// returns its id. Count, FirstWallNS and LastWallNS are set from WallNS;
// ID, Seq and the hashes are assigned.
func (tx *Tx) AppendAudit(ctx context.Context, rec AuditRecord) (int64, error) {
	rec.Count, rec.FirstWallNS, rec.LastWallNS = 1, rec.WallNS, rec.WallNS
	rec.Aggregate, rec.MinuteBucket = false, 0
	head, err := readAuditHead(ctx, tx.q)
	if err != nil {
		return 0, err
	}
	rec.Seq, rec.PrevHash = head.seq+1, head.hash
	sum := auditDigest(rec.PrevHash, &rec)
	rec.Hash = sum[:]
	res, err := tx.q.ExecContext(ctx, sqlAppendAudit,
		rec.Seq, rec.WallNS, rec.InstantNS, rec.Principal, rec.Source, string(rec.KeyKind), string(rec.Channel),
		rec.Actor, rec.Outcome, rec.Reason, detailArg(rec.Detail), rec.FirstWallNS, rec.LastWallNS,
		rec.PrevHash, rec.Hash)
	if err != nil {
		return 0, wrap("append audit record", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, wrap("append audit record", err)
	}
	return id, tx.setAuditHead(ctx, auditHead{seq: rec.Seq, rowID: id, hash: rec.Hash})
}

// AppendOrAggregateRefusal records refusals on an already-locked key (SPEC
// R-AUDIT: aggregated per key per minute, so a flood cannot fill the disk).
// rec stands for rec.Count refusals between rec.FirstWallNS and
// rec.LastWallNS, so a caller that merged a batch's refusals of one key
// writes them at once; Count 0 means one refusal at rec.WallNS.
// minuteBucket is the caller's minute number (for example WallNS / 60e9);
// the store only compares buckets for equality, so a clock step cannot
// confuse it.
//
// The open aggregate of the same key, channel, outcome and reason in this
// bucket gets count += Count and last_wall_ns = LastWallNS; the other
// fields keep the first refusal's values. Without one, a new open aggregate
// is started, and every open aggregate of another bucket is sealed first
// (see the package doc). So after every call all open aggregates belong to
// the bucket of that call, which is why a bump need not look for rows to
// seal: the insert that opened the row it bumps sealed them. It returns the
// row id and the row's count after these refusals; inside MergeRefusals,
// id 0 and the count merged so far (see there).
func (tx *Tx) AppendOrAggregateRefusal(ctx context.Context, rec AuditRecord, minuteBucket int64) (id, count int64, err error) {
	if rec.KeyKind == "" {
		return 0, 0, fmt.Errorf("store: aggregate refusal: %w: refusals are aggregated per key; KeyKind is empty", ErrConstraint)
	}
	switch {
	case rec.Count < 0:
		return 0, 0, fmt.Errorf("store: aggregate refusal: %w: count %d", ErrConstraint, rec.Count)
	case rec.Count == 0:
		rec.Count, rec.FirstWallNS, rec.LastWallNS = 1, rec.WallNS, rec.WallNS
	}
	if tx.merge != nil {
		return 0, tx.merge.add(rec, minuteBucket), nil
	}
	return tx.aggregateRefusal(ctx, rec, minuteBucket, true)
}

// aggregateRefusal writes rec.Count (≥ 1) refusals: a bump of the open
// aggregate, or a new one after sealing the other minutes' (see
// AppendOrAggregateRefusal). Without returning, it skips reading back the
// row's count and returns zeros for a bump.
//
// It finds the open aggregate by the row id db.open remembers, and knows
// from there whether another minute's rows are open, so a flood's write
// is one UPDATE by primary key, or one INSERT, with no search; when db.open
// cannot be trusted (another connection committed, a rollback) it is
// learnt again first.
func (tx *Tx) aggregateRefusal(ctx context.Context, rec AuditRecord, minuteBucket int64, returning bool) (id, count int64, err error) {
	m, err := tx.openAggs(ctx)
	if err != nil {
		return 0, 0, err
	}
	k := refusalKey{rec.KeyKind, rec.Principal, rec.Source, rec.Channel, rec.Outcome, rec.Reason, minuteBucket}
	for relearnt := false; ; relearnt = true {
		open, ok := m.rows[k]
		if !ok {
			break
		}
		id := open.ID
		bumped := false
		if returning {
			err = tx.q.QueryRowContext(ctx, sqlBumpByIDReturning, rec.Count, rec.LastWallNS, id).Scan(&count)
			bumped = err == nil
			if errors.Is(err, sql.ErrNoRows) {
				err = nil
			}
		} else {
			var res sql.Result
			if res, err = tx.q.ExecContext(ctx, sqlBumpByID, rec.Count, rec.LastWallNS, id); err == nil {
				var n int64
				n, err = res.RowsAffected()
				bumped = n > 0
			}
			count = open.Count + rec.Count
		}
		switch {
		case err != nil:
			return 0, 0, wrap("aggregate refusal", err)
		case bumped:
			open.Count, open.LastWallNS = count, rec.LastWallNS
			if !returning {
				return 0, 0, nil
			}
			return id, count, nil
		}
		// The row is not open: db.open was wrong, which its rules
		// should make impossible. Learn again from the file, and bump
		// the row it names, if any.
		if relearnt {
			return 0, 0, fmt.Errorf("store: aggregate refusal: open aggregate %d could not be bumped", id)
		}
		m.valid = false
		if m, err = tx.openAggs(ctx); err != nil {
			return 0, 0, err
		}
	}
	if m.otherBuckets(minuteBucket) {
		if _, err := tx.sealAggregates(ctx, &minuteBucket); err != nil {
			return 0, 0, err
		}
	}
	res, err := tx.q.ExecContext(ctx, sqlInsertAggregate,
		rec.WallNS, rec.InstantNS, rec.Principal, rec.Source, string(rec.KeyKind), string(rec.Channel),
		rec.Actor, rec.Outcome, rec.Reason, detailArg(rec.Detail), rec.Count, rec.FirstWallNS, rec.LastWallNS,
		minuteBucket)
	if err != nil {
		return 0, 0, wrap("aggregate refusal", err)
	}
	if id, err = res.LastInsertId(); err != nil {
		return 0, 0, wrap("aggregate refusal", err)
	}
	// The row as stored, for sealing (openAggregates.rows).
	stored := rec
	stored.ID, stored.Seq, stored.PrevHash, stored.Hash = id, 0, nil, nil
	stored.Aggregate, stored.MinuteBucket = true, minuteBucket
	if rec.Detail != nil {
		stored.Detail = slices.Clone(rec.Detail)
	}
	m.add(k, &stored)
	return id, rec.Count, nil
}

// openAggregates is the open aggregate rows (seq IS NULL) as this DB last
// knew them: each one's id by its key and minute, and how many are open
// per minute. While valid it is exact: open rows are written only by
// aggregateRefusal and sealAggregates, which keep it up to date; a
// transaction that rolls back after reading or changing it makes it
// invalid (WithTx); and another connection's commit (the console, which
// refuses and seals too) shows as a change of PRAGMA data_version, checked
// in every transaction that uses it, before it is used. An id it holds
// names its key for good: ids are never reused (AUTOINCREMENT), rows are
// never deleted (audit_no_delete), and nothing changes an open row's key
// columns. And should it ever be wrong, the bump by id matches only an
// open row (seq IS NULL, and the trigger refuses any update of a sealed
// row), and the unique index audit_open_aggregate refuses a second open
// row for one key and minute: a stale entry costs a search, never a wrong
// count or a broken chain.
//
// Only write transactions use it, one at a time (the writer connection is
// the DB's only one), so it needs no lock of its own.
type openAggregates struct {
	valid bool
	dv    dataVersion // the data version it was learnt or checked at
	// rows is every open row by its key and minute, as it is stored: its
	// id for bumps, and its columns for sealing, which hashes them without
	// reading the rows back. An insert adds a row, every bump updates its
	// count and last_wall_ns, a seal removes it. Sealing still checks, in
	// its UPDATE, that the row's count and last_wall_ns (the only columns
	// a bump changes) are what it hashed, so a wrong copy fails the
	// transaction instead of sealing a hash that does not match the row.
	rows map[refusalKey]*AuditRecord
	// buckets counts the open rows per minute bucket.
	buckets map[int64]int
}

var sqlOpenAggregateRows = hot(`SELECT ` + auditColumns + ` FROM audit_log WHERE seq IS NULL`)

// openAggs returns db.open, learnt again from the file if it is not valid
// or another connection committed since it was.
func (tx *Tx) openAggs(ctx context.Context) (*openAggregates, error) {
	m := &tx.db.open
	tx.usedOpen = true
	dv, err := tx.dataVersion(ctx)
	if err != nil {
		m.valid = false
		return nil, err
	}
	if m.valid && m.dv == dv {
		return m, nil
	}
	m.valid = false
	rows, err := tx.q.QueryContext(ctx, sqlOpenAggregateRows)
	if err != nil {
		return nil, wrap("read open audit aggregates", err)
	}
	defer rows.Close()
	if m.rows == nil {
		m.rows, m.buckets = map[refusalKey]*AuditRecord{}, map[int64]int{}
	}
	clear(m.rows)
	clear(m.buckets)
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, wrap("read open audit aggregates", err)
		}
		m.add(refusalKey{r.KeyKind, r.Principal, r.Source, r.Channel, r.Outcome, r.Reason, r.MinuteBucket}, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("read open audit aggregates", err)
	}
	m.valid, m.dv = true, dv
	return m, nil
}

func (m *openAggregates) add(k refusalKey, r *AuditRecord) {
	m.rows[k] = r
	m.buckets[k.bucket]++
}

// toSeal lists the open rows of every minute but *keep's (all if keep is
// nil), in id order: the order the chain takes them in.
func (m *openAggregates) toSeal(keep *int64) []*AuditRecord {
	var out []*AuditRecord
	for _, r := range m.rows {
		if keep == nil || r.MinuteBucket != *keep {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *AuditRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// otherBuckets reports whether rows of a minute other than bucket are open.
func (m *openAggregates) otherBuckets(bucket int64) bool {
	return len(m.buckets) > 1 || (len(m.buckets) == 1 && m.buckets[bucket] == 0)
}

// sealed forgets the rows sealAggregates sealed: every minute's but
// *keep's (all if keep is nil).
func (m *openAggregates) sealed(keep *int64) {
	if !m.valid {
		return
	}
	if keep == nil {
		clear(m.rows)
		clear(m.buckets)
		return
	}
	for k := range m.rows {
		if k.bucket != *keep {
			delete(m.rows, k)
		}
	}
	for b := range m.buckets {
		if b != *keep {
			delete(m.buckets, b)
		}
	}
}

// refusalMerge is the refusals a transaction has been handed so far,
// merged per aggregate row: what AppendOrAggregateRefusal would have
// bumped or inserted, in the order each row was first asked for.
type refusalMerge struct {
	index map[refusalKey]int
	recs  []pendingRefusal
}

// refusalKey is what names one aggregate row: the columns of the unique
// index audit_open_aggregate.
type refusalKey struct {
	kind              KeyKind
	principal, source string
	channel           Channel
	outcome, reason   string
	bucket            int64
}

type pendingRefusal struct {
	rec    AuditRecord
	bucket int64
}

// add merges rec into its row's pending refusals and returns how many this
// transaction has merged for that row so far.
func (m *refusalMerge) add(rec AuditRecord, bucket int64) int64 {
	k := refusalKey{rec.KeyKind, rec.Principal, rec.Source, rec.Channel, rec.Outcome, rec.Reason, bucket}
	if i, ok := m.index[k]; ok {
		p := &m.recs[i].rec
		// The first refusal's fields stay, as in the row; count and last
		// move on, as a bump would move them.
		p.Count += rec.Count
		p.LastWallNS = rec.LastWallNS
		return p.Count
	}
	m.index[k] = len(m.recs)
	m.recs = append(m.recs, pendingRefusal{rec: rec, bucket: bucket})
	return rec.Count
}

// MergeRefusals runs fn with tx merging refusals: every
// AppendOrAggregateRefusal on tx during fn is added to a pending count per
// aggregate row, in memory, and returns id 0 and the count merged so far
// for that row in this transaction. When fn returns nil, the merged
// refusals are written, one bump or insert per row, oldest minute first;
// so N refusals of one key and minute cost one UPDATE instead of N.
//
// Every key and minute ends with the same count, first and last as if each
// refusal had been written at its call, and the chain is built the same
// way (a row is sealed when another minute's first refusal is written).
// What differs stays inside the transaction: rows are written after fn's
// other writes (an aggregate's id may be higher than that of a record
// appended after it in fn), a minute's straggler is written before the
// next minute's refusals of the batch rather than between them, and an
// invalid refusal (a bad channel, say) fails the transaction at the end
// rather than at its call. If fn fails, nothing merged is written; the
// transaction is to be rolled back anyway.
//
// It is for a caller that puts many independent attempts into one
// transaction: the auth service's group commit (SPEC R-AUDIT; R-ATOMIC
// holds because the merged refusals commit, or not, with the transaction
// their callers wait for).
func (tx *Tx) MergeRefusals(ctx context.Context, fn func() error) error {
	if tx.merge != nil {
		return errors.New("store: merge refusals: already merging in this transaction")
	}
	// The DB's one merge, reused: write transactions are serialised, and
	// a map and slice per batch were a tenth of the bytes a flood
	// allocates.
	m := &tx.db.merge
	if m.index == nil {
		m.index = map[refusalKey]int{}
	}
	clear(m.index)
	clear(m.recs) // drop the strings the last batch held
	m.recs = m.recs[:0]
	tx.merge = m
	err := func() error {
		defer func() { tx.merge = nil }() // even if fn panics
		return fn()
	}()
	if err != nil {
		return err
	}
	// Oldest minute first: each insert seals the other minutes' open
	// rows, so this leaves open only rows of the batch's newest minute, as
	// writing the refusals one by one in time order would. A straggler
	// (a refusal decided just before the minute turned) is sealed at once.
	slices.SortStableFunc(m.recs, func(a, b pendingRefusal) int { return cmp.Compare(a.bucket, b.bucket) })
	for i := 0; i < len(m.recs); i++ {
		if i+1 < len(m.recs) {
			// Two bumps in a row (a refusal and the extension it caused,
			// say) are one UPDATE: a bump costs more in statement overhead
			// than in the row it changes.
			done, err := tx.bumpTwo(ctx, &m.recs[i], &m.recs[i+1])
			if err != nil {
				return err
			}
			if done {
				i++
				continue
			}
		}
		p := &m.recs[i]
		if _, _, err := tx.aggregateRefusal(ctx, p.rec, p.bucket, false); err != nil {
			return err
		}
	}
	return nil
}

var (
	sqlBumpTwo = hot(`UPDATE audit_log
		SET count = count + CASE id WHEN ?1 THEN ?2 ELSE ?5 END,
		    last_wall_ns = CASE id WHEN ?1 THEN ?3 ELSE ?6 END
		WHERE id IN (?1, ?4) AND seq IS NULL`)
	sqlIsOpen = hot(`SELECT seq IS NULL FROM audit_log WHERE id = ?`)
)

// bumpTwo bumps the open aggregates of a and b in one statement if db.open
// knows both, and reports whether it wrote both. When db.open was wrong
// about one of them (see aggregateRefusal), the other's bump stands and
// the wrong one is written by aggregateRefusal, which learns again.
func (tx *Tx) bumpTwo(ctx context.Context, a, b *pendingRefusal) (bool, error) {
	m, err := tx.openAggs(ctx)
	if err != nil {
		return false, err
	}
	ka := refusalKey{a.rec.KeyKind, a.rec.Principal, a.rec.Source, a.rec.Channel, a.rec.Outcome, a.rec.Reason, a.bucket}
	kb := refusalKey{b.rec.KeyKind, b.rec.Principal, b.rec.Source, b.rec.Channel, b.rec.Outcome, b.rec.Reason, b.bucket}
	ra, oka := m.rows[ka]
	rb, okb := m.rows[kb]
	if !oka || !okb || ra.ID == rb.ID || a.bucket != b.bucket {
		return false, nil
	}
	ida, idb := ra.ID, rb.ID
	res, err := tx.q.ExecContext(ctx, sqlBumpTwo, ida, a.rec.Count, a.rec.LastWallNS, idb, b.rec.Count, b.rec.LastWallNS)
	if err != nil {
		return false, wrap("aggregate refusal", err)
	}
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return false, wrap("aggregate refusal", err)
	case n == 2:
		ra.Count, ra.LastWallNS = ra.Count+a.rec.Count, a.rec.LastWallNS
		rb.Count, rb.LastWallNS = rb.Count+b.rec.Count, b.rec.LastWallNS
		return true, nil
	}
	// db.open was wrong. A row's openness did not change in the UPDATE,
	// so an open row now is a row it bumped. What db.open holds of it is
	// now stale: it learns again from the file below, or in the next
	// transaction.
	m.valid = false
	for _, p := range []struct {
		id  int64
		ref *pendingRefusal
	}{{ida, a}, {idb, b}} {
		var open bool
		if err := tx.q.QueryRowContext(ctx, sqlIsOpen, p.id).Scan(&open); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, wrap("aggregate refusal", err)
		}
		if open {
			continue
		}
		if _, _, err := tx.aggregateRefusal(ctx, p.ref.rec, p.ref.bucket, false); err != nil {
			return false, err
		}
	}
	return true, nil
}

// SealAuditAggregates seals every open aggregate whose bucket is not
// currentBucket (their minute has closed) and returns how many it sealed.
// The auth service calls it once a minute so a quiet key's last aggregate
// does not stay open.
func (tx *Tx) SealAuditAggregates(ctx context.Context, currentBucket int64) (int, error) {
	return tx.sealAggregates(ctx, &currentBucket)
}

// SealAllAuditAggregates seals every open aggregate (clean shutdown).
func (tx *Tx) SealAllAuditAggregates(ctx context.Context) (int, error) {
	return tx.sealAggregates(ctx, nil)
}

const auditColumns = `id, coalesce(seq, 0), wall_ns, instant_ns, principal, source, key_kind, channel, actor,
	outcome, reason, detail, count, first_wall_ns, last_wall_ns, minute_bucket IS NOT NULL,
	coalesce(minute_bucket, 0), prev_hash, hash`

func scanAudit(row interface{ Scan(...any) error }) (AuditRecord, error) {
	var r AuditRecord
	var detail sql.NullString
	err := row.Scan(&r.ID, &r.Seq, &r.WallNS, &r.InstantNS, &r.Principal, &r.Source, &r.KeyKind, &r.Channel,
		&r.Actor, &r.Outcome, &r.Reason, &detail, &r.Count, &r.FirstWallNS, &r.LastWallNS, &r.Aggregate,
		&r.MinuteBucket, &r.PrevHash, &r.Hash)
	if detail.Valid {
		r.Detail = json.RawMessage(detail.String)
	}
	return r, err
}

// sealAggregates chains the open aggregates whose bucket differs from
// *keep (all of them if keep is nil), in id order. It hashes the rows as
// db.open holds them (openAggregates.rows) rather than reading them
// back; each UPDATE also requires the row's count and last_wall_ns to be
// the ones hashed, so a copy that differs from the row fails the
// transaction (which then forgets db.open, and the retry learns it from
// the file) and never seals a wrong hash.
func (tx *Tx) sealAggregates(ctx context.Context, keep *int64) (int, error) {
	m, err := tx.openAggs(ctx)
	if err != nil {
		return 0, err
	}
	open := m.toSeal(keep)
	if len(open) == 0 {
		return 0, nil
	}
	m.sealed(keep)
	head, err := readAuditHead(ctx, tx.q)
	if err != nil {
		return 0, err
	}
	for i, o := range open {
		r := *o
		r.Seq, r.PrevHash = head.seq+1, head.hash
		sum := auditDigest(r.PrevHash, &r)
		r.Hash = sum[:]
		res, err := tx.q.ExecContext(ctx, sqlSealAggregate, r.Seq, r.PrevHash, r.Hash, r.ID, r.Count, r.LastWallNS)
		if err := wrapAffected(fmt.Sprintf("seal audit row %d", r.ID), res, err,
			"the row is no longer open, or differs from what this database wrote"); err != nil {
			m.valid = false
			return i, err
		}
		head = auditHead{seq: r.Seq, rowID: r.ID, hash: r.Hash}
	}
	return len(open), tx.setAuditHead(ctx, head)
}

// AuditChainError names the first audit row whose hash or link is wrong.
// It matches ErrAuditChain.
type AuditChainError struct {
	RowID   int64 // the row to look at
	Seq     int64 // its chain position (the expected one if rows are missing)
	Problem string
}

func (e *AuditChainError) Error() string {
	return fmt.Sprintf("store: audit chain broken at row %d (seq %d): %s", e.RowID, e.Seq, e.Problem)
}

// Is makes errors.Is(err, ErrAuditChain) true.
func (e *AuditChainError) Is(target error) bool { return target == ErrAuditChain }

// VerifyAuditChain walks the sealed audit rows in chain order, recomputing
// every hash and link, and checks that the chain ends where audit_head
// says. It returns how many rows it verified; on a break, the error is an
// *AuditChainError naming the first bad row (an edited row by its own id; a
// deleted row by the id of the row after the gap, or by audit_head's row id
// if the tail was cut). It reads one consistent snapshot and never blocks
// writers.
//
// Open aggregates are not part of the chain yet and are not counted: their
// count still grows with every refusal of their key and minute (R-AUDIT),
// and a hash over a count that changes would have to be rewritten, so the
// chain takes a row once, when it is sealed and its content is final
// (sealed rows are never updated: the bump only matches seq IS NULL, and
// a trigger refuses the rest). Rows a crash left open stay open, with
// every committed refusal counted, until the next minute's first refusal
// or the service's minute tick seals them. Turning a sealed row back into
// an open one to edit it shows here as a gap in seq.
func (db *DB) VerifyAuditChain(ctx context.Context) (int, error) {
	// One read transaction, so the rows and the head are one snapshot. A
	// pinned DB (Options.CommitEvery) has one connection, already in a
	// transaction, whose writes the caller does not run beside this.
	rtx := db.reads()
	if db.pin == nil {
		t, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return 0, wrap("verify audit chain", err)
		}
		defer t.Rollback() // read-only: nothing to commit
		rtx = t
	}

	rows, err := rtx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE seq IS NOT NULL ORDER BY seq`)
	if err != nil {
		return 0, wrap("verify audit chain", err)
	}
	defer rows.Close()
	var (
		checked  int
		lastSeq  int64
		lastID   int64
		prevHash = make([]byte, sha256.Size) // genesis
	)
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return checked, wrap("verify audit chain", err)
		}
		switch {
		case r.Seq != lastSeq+1:
			return checked, &AuditChainError{RowID: r.ID, Seq: r.Seq,
				Problem: fmt.Sprintf("seq %d follows seq %d: rows are missing before it", r.Seq, lastSeq)}
		case !bytes.Equal(r.PrevHash, prevHash):
			return checked, &AuditChainError{RowID: r.ID, Seq: r.Seq,
				Problem: fmt.Sprintf("prev_hash does not match the hash of row %d", lastID)}
		}
		if sum := auditDigest(r.PrevHash, &r); !bytes.Equal(sum[:], r.Hash) {
			return checked, &AuditChainError{RowID: r.ID, Seq: r.Seq,
				Problem: "hash does not match the row's contents: the row was changed"}
		}
		checked++
		lastSeq, lastID, prevHash = r.Seq, r.ID, r.Hash
	}
	if err := rows.Err(); err != nil {
		return checked, wrap("verify audit chain", err)
	}
	head, err := readAuditHead(ctx, rtx)
	if err != nil {
		return checked, err
	}
	if head.seq != lastSeq || !bytes.Equal(head.hash, prevHash) {
		return checked, &AuditChainError{RowID: head.rowID, Seq: head.seq,
			Problem: fmt.Sprintf("the chain ends at seq %d (row %d) but the audit head records seq %d: rows were removed from the end",
				lastSeq, lastID, head.seq)}
	}
	return checked, nil
}

// AuditFilter selects audit rows for ListAudit. Zero fields do not filter.
type AuditFilter struct {
	Principal string
	Source    string
	Channel   Channel
	Outcome   string
	FromNS    int64 // wall_ns >= FromNS
	ToNS      int64 // wall_ns < ToNS
	BeforeID  int64 // id < BeforeID: the next page of a newest-first listing
	Limit     int   // 0: 100
}

// ListAudit returns audit rows matching f, newest (highest id) first,
// open aggregates included.
func (db *DB) ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	return listAudit(ctx, db.reads(), f)
}

// ListAudit returns audit rows matching f as this transaction sees them.
func (tx *Tx) ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	return listAudit(ctx, tx.q, f)
}

func listAudit(ctx context.Context, q queryer, f AuditFilter) ([]AuditRecord, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Principal != "" {
		add("principal = ?", f.Principal)
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	if f.Channel != "" {
		add("channel = ?", string(f.Channel))
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if f.FromNS != 0 {
		add("wall_ns >= ?", f.FromNS)
	}
	if f.ToNS != 0 {
		add("wall_ns < ?", f.ToNS)
	}
	if f.BeforeID != 0 {
		add("id < ?", f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	return collect(rows, "list audit", scanAudit)
}
