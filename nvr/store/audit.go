package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
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
	// The conflict target is the partial unique index audit_open_aggregate,
	// so only an open row of this bucket is ever bumped.
	sqlAggregateRefusal = hot(`
		INSERT INTO audit_log (wall_ns, instant_ns, principal, source, key_kind, channel, actor, outcome,
		                       reason, detail, count, first_wall_ns, last_wall_ns, minute_bucket)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?1, ?1, ?11)
		ON CONFLICT (key_kind, principal, source, channel, outcome, reason, minute_bucket) WHERE seq IS NULL
		DO UPDATE SET count = count + 1, last_wall_ns = excluded.last_wall_ns
		RETURNING id, count`)
	sqlOpenAggregatesExcept = hot(`SELECT ` + auditColumns + ` FROM audit_log
		WHERE seq IS NULL AND minute_bucket <> ? ORDER BY id`)
	sqlOpenAggregates = `SELECT ` + auditColumns + ` FROM audit_log WHERE seq IS NULL ORDER BY id`
	sqlSealAggregate  = hot(`UPDATE audit_log SET seq = ?, prev_hash = ?, hash = ? WHERE id = ? AND seq IS NULL`)
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

// AppendOrAggregateRefusal records a refusal on an already-locked key (SPEC
// R-AUDIT: aggregated per key per minute, so a flood cannot fill the disk).
// minuteBucket is the caller's minute number (for example WallNS / 60e9);
// the store only compares buckets for equality, so a clock step cannot
// confuse it. The open aggregate of the same key, channel, outcome and
// reason in this bucket gets count+1 and last_wall_ns = rec.WallNS;
// otherwise a new open aggregate is started. Open aggregates of other
// buckets are sealed first (see the package doc). It returns the row id and
// the row's count after this refusal.
func (tx *Tx) AppendOrAggregateRefusal(ctx context.Context, rec AuditRecord, minuteBucket int64) (id, count int64, err error) {
	if rec.KeyKind == "" {
		return 0, 0, fmt.Errorf("store: aggregate refusal: %w: refusals are aggregated per key; KeyKind is empty", ErrConstraint)
	}
	if _, err := tx.sealAggregates(ctx, &minuteBucket); err != nil {
		return 0, 0, err
	}
	err = tx.q.QueryRowContext(ctx, sqlAggregateRefusal,
		rec.WallNS, rec.InstantNS, rec.Principal, rec.Source, string(rec.KeyKind), string(rec.Channel),
		rec.Actor, rec.Outcome, rec.Reason, detailArg(rec.Detail), minuteBucket).Scan(&id, &count)
	if err != nil {
		return 0, 0, wrap("aggregate refusal", err)
	}
	return id, count, nil
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
// *keep (all of them if keep is nil), in id order.
func (tx *Tx) sealAggregates(ctx context.Context, keep *int64) (int, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if keep != nil {
		rows, err = tx.q.QueryContext(ctx, sqlOpenAggregatesExcept, *keep)
	} else {
		rows, err = tx.q.QueryContext(ctx, sqlOpenAggregates)
	}
	if err != nil {
		return 0, wrap("seal audit aggregates", err)
	}
	// Collect before writing: the rows come from the same connection.
	open, err := collect(rows, "seal audit aggregates", scanAudit)
	if err != nil || len(open) == 0 {
		return 0, err
	}
	head, err := readAuditHead(ctx, tx.q)
	if err != nil {
		return 0, err
	}
	for i := range open {
		r := &open[i]
		r.Seq, r.PrevHash = head.seq+1, head.hash
		sum := auditDigest(r.PrevHash, r)
		r.Hash = sum[:]
		res, err := tx.q.ExecContext(ctx, sqlSealAggregate, r.Seq, r.PrevHash, r.Hash, r.ID)
		if err := wrapAffected(fmt.Sprintf("seal audit row %d", r.ID), res, err, "row is no longer open"); err != nil {
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
// if the tail was cut). Open aggregates are not part of the chain yet and
// are not counted. It reads one consistent snapshot and never blocks writers.
func (db *DB) VerifyAuditChain(ctx context.Context) (int, error) {
	rtx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, wrap("verify audit chain", err)
	}
	defer rtx.Rollback() // read-only: nothing to commit

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
	return listAudit(ctx, db.read, f)
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
