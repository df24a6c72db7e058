package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// Camera is one (simulated) camera.
type Camera struct {
	ID      int64
	Name    string
	FPS     int
	Width   int
	Height  int
	Enabled bool
}

// InsertCamera adds c (c.ID is ignored) and returns its id.
func (tx *Tx) InsertCamera(ctx context.Context, c Camera) (int64, error) {
	res, err := tx.q.ExecContext(ctx,
		`INSERT INTO cameras (name, fps, width, height, enabled) VALUES (?, ?, ?, ?, ?)`,
		c.Name, c.FPS, c.Width, c.Height, boolInt(c.Enabled))
	if err != nil {
		return 0, wrap(fmt.Sprintf("insert camera %q", c.Name), err)
	}
	id, err := res.LastInsertId()
	return id, wrap("insert camera", err)
}

// UpdateCamera writes every field of c to the camera with id c.ID.
func (tx *Tx) UpdateCamera(ctx context.Context, c Camera) error {
	res, err := tx.q.ExecContext(ctx,
		`UPDATE cameras SET name = ?, fps = ?, width = ?, height = ?, enabled = ? WHERE id = ?`,
		c.Name, c.FPS, c.Width, c.Height, boolInt(c.Enabled), c.ID)
	return wrapAffected(fmt.Sprintf("update camera %d", c.ID), res, err, "no such camera")
}

// DeleteCamera removes a camera that has no segments left; one that still
// has segments is ErrConstraint (move them to garbage first).
func (tx *Tx) DeleteCamera(ctx context.Context, id int64) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM cameras WHERE id = ?`, id)
	return wrapAffected(fmt.Sprintf("delete camera %d", id), res, err, "no such camera")
}

// GetCamera returns one camera.
func (db *DB) GetCamera(ctx context.Context, id int64) (Camera, error) {
	return getCamera(ctx, db.reads(), id)
}

// GetCamera returns one camera as this transaction sees it.
func (tx *Tx) GetCamera(ctx context.Context, id int64) (Camera, error) {
	return getCamera(ctx, tx.q, id)
}

func getCamera(ctx context.Context, q queryer, id int64) (Camera, error) {
	c, err := scanCamera(q.QueryRowContext(ctx, `SELECT `+cameraColumns+` FROM cameras WHERE id = ?`, id))
	return c, wrap(fmt.Sprintf("get camera %d", id), err)
}

const cameraColumns = `id, name, fps, width, height, enabled`

func scanCamera(row interface{ Scan(...any) error }) (Camera, error) {
	var c Camera
	err := row.Scan(&c.ID, &c.Name, &c.FPS, &c.Width, &c.Height, &c.Enabled)
	return c, err
}

// ListCameras returns every camera, by id.
func (db *DB) ListCameras(ctx context.Context) ([]Camera, error) { return listCameras(ctx, db.reads()) }

// ListCameras returns every camera, by id.
func (tx *Tx) ListCameras(ctx context.Context) ([]Camera, error) { return listCameras(ctx, tx.q) }

func listCameras(ctx context.Context, q queryer) ([]Camera, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+cameraColumns+` FROM cameras ORDER BY id`)
	if err != nil {
		return nil, wrap("list cameras", err)
	}
	return collect(rows, "list cameras", scanCamera)
}

// Segment is the index row of one recorded file. Wall times are for people
// and for finding footage; StartInstantNS and DurationNS come from the
// monotonic clock and are what playback trusts.
type Segment struct {
	ID             int64
	CameraID       int64
	StartWallNS    int64
	EndWallNS      int64
	StartInstantNS int64
	DurationNS     int64
	Bytes          int64
	Frames         int64
	Path           string // the recorder's name for the file; unique
}

// InsertSegment indexes a segment whose file is already written and synced,
// and returns its id. Ids are never reused.
func (tx *Tx) InsertSegment(ctx context.Context, s Segment) (int64, error) {
	res, err := tx.q.ExecContext(ctx, `
		INSERT INTO segments (camera_id, start_wall_ns, end_wall_ns, start_instant_ns, duration_ns, bytes, frames, path)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.CameraID, s.StartWallNS, s.EndWallNS, s.StartInstantNS, s.DurationNS, s.Bytes, s.Frames, s.Path)
	if err != nil {
		return 0, wrap(fmt.Sprintf("insert segment %s", s.Path), err)
	}
	id, err := res.LastInsertId()
	return id, wrap("insert segment", err)
}

const segmentColumns = `id, camera_id, start_wall_ns, end_wall_ns, start_instant_ns, duration_ns, bytes, frames, path`

// segmentListQuery walks segments_cover in order: every column it reads is
// in the index, and the ORDER BY is the index order, so SQLite neither
// touches the table nor sorts.
const segmentListQuery = `SELECT ` + segmentColumns + ` FROM segments
	WHERE camera_id = ? AND start_wall_ns < ? AND end_wall_ns > ?
	ORDER BY start_wall_ns, end_wall_ns LIMIT ?`

func scanSegment(row interface{ Scan(...any) error }) (Segment, error) {
	var s Segment
	err := row.Scan(&s.ID, &s.CameraID, &s.StartWallNS, &s.EndWallNS, &s.StartInstantNS, &s.DurationNS,
		&s.Bytes, &s.Frames, &s.Path)
	return s, err
}

// GetSegment returns one segment.
func (db *DB) GetSegment(ctx context.Context, id int64) (Segment, error) {
	return getSegment(ctx, db.reads(), id)
}

// GetSegment returns one segment as this transaction sees it.
func (tx *Tx) GetSegment(ctx context.Context, id int64) (Segment, error) {
	return getSegment(ctx, tx.q, id)
}

func getSegment(ctx context.Context, q queryer, id int64) (Segment, error) {
	s, err := scanSegment(q.QueryRowContext(ctx, `SELECT `+segmentColumns+` FROM segments WHERE id = ?`, id))
	return s, wrap(fmt.Sprintf("get segment %d", id), err)
}

// ListSegments returns up to limit segments of a camera that overlap the
// wall-time range [fromNS, toNS), by start time. It is served by the
// covering index alone. limit <= 0 means no limit.
func (db *DB) ListSegments(ctx context.Context, cameraID, fromNS, toNS int64, limit int) ([]Segment, error) {
	return listSegments(ctx, db.reads(), cameraID, fromNS, toNS, limit)
}

// ListSegments lists a camera's segments as this transaction sees them.
func (tx *Tx) ListSegments(ctx context.Context, cameraID, fromNS, toNS int64, limit int) ([]Segment, error) {
	return listSegments(ctx, tx.q, cameraID, fromNS, toNS, limit)
}

func listSegments(ctx context.Context, q queryer, cameraID, fromNS, toNS int64, limit int) ([]Segment, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := q.QueryContext(ctx, segmentListQuery, cameraID, toNS, fromNS, limit)
	if err != nil {
		return nil, wrap(fmt.Sprintf("list segments of camera %d", cameraID), err)
	}
	return collect(rows, "list segments", scanSegment)
}

// OldestSegments returns up to limit segments in recording order (by id),
// across all cameras, for retention. Id order, not wall time, because a
// clock reset to 1970 must not make fresh footage look oldest.
func (db *DB) OldestSegments(ctx context.Context, limit int) ([]Segment, error) {
	return oldestSegments(ctx, db.reads(), limit)
}

// OldestSegments returns the oldest segments as this transaction sees them.
func (tx *Tx) OldestSegments(ctx context.Context, limit int) ([]Segment, error) {
	return oldestSegments(ctx, tx.q, limit)
}

func oldestSegments(ctx context.Context, q queryer, limit int) ([]Segment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+segmentColumns+` FROM segments ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, wrap("list oldest segments", err)
	}
	return collect(rows, "list oldest segments", scanSegment)
}

// SegmentUsage is what the recordings occupy.
type SegmentUsage struct {
	Segments int64
	Bytes    int64
}

// SegmentUsage sums all indexed segments (retention by disk quota). Files in
// garbage are not counted: they are already on their way out.
func (db *DB) SegmentUsage(ctx context.Context) (SegmentUsage, error) {
	return segmentUsage(ctx, db.reads())
}

// SegmentUsage sums all indexed segments as this transaction sees them.
func (tx *Tx) SegmentUsage(ctx context.Context) (SegmentUsage, error) {
	return segmentUsage(ctx, tx.q)
}

func segmentUsage(ctx context.Context, q queryer) (SegmentUsage, error) {
	var u SegmentUsage
	err := q.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(bytes), 0) FROM segments`).
		Scan(&u.Segments, &u.Bytes)
	return u, wrap("segment usage", err)
}

// MarkSegmentsGarbage is the first step of deleting segments: in this
// transaction each segment row moves to the garbage table, so the footage
// disappears from listings at once while its file still exists. Unknown ids
// are skipped. It returns how many segments it moved. The files are removed
// later by CollectGarbage; a crash in between leaves garbage rows that the
// next CollectGarbage finishes.
func (tx *Tx) MarkSegmentsGarbage(ctx context.Context, ids []int64) (int, error) {
	moved := 0
	for _, id := range ids {
		res, err := tx.q.ExecContext(ctx, `
			INSERT INTO garbage (segment_id, camera_id, path)
			SELECT id, camera_id, path FROM segments WHERE id = ?`, id)
		if err != nil {
			return moved, wrap(fmt.Sprintf("mark segment %d garbage", id), err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return moved, wrap(fmt.Sprintf("mark segment %d garbage", id), err)
		} else if n == 0 {
			continue
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, id); err != nil {
			return moved, wrap(fmt.Sprintf("mark segment %d garbage", id), err)
		}
		moved++
	}
	return moved, nil
}

// Garbage is a segment whose row is gone and whose file may still exist.
type Garbage struct {
	SegmentID int64
	CameraID  int64
	Path      string
}

// ListGarbage returns every pending garbage row, by segment id.
func (db *DB) ListGarbage(ctx context.Context) ([]Garbage, error) {
	return listGarbage(ctx, db.reads())
}

// ListGarbage returns pending garbage rows as this transaction sees them.
func (tx *Tx) ListGarbage(ctx context.Context) ([]Garbage, error) { return listGarbage(ctx, tx.q) }

func listGarbage(ctx context.Context, q queryer) ([]Garbage, error) {
	rows, err := q.QueryContext(ctx, `SELECT segment_id, camera_id, path FROM garbage ORDER BY segment_id`)
	if err != nil {
		return nil, wrap("list garbage", err)
	}
	return collect(rows, "list garbage", func(r interface{ Scan(...any) error }) (Garbage, error) {
		var g Garbage
		err := r.Scan(&g.SegmentID, &g.CameraID, &g.Path)
		return g, err
	})
}

// CollectGarbage is the second step of deleting segments: for every garbage
// row it calls remove(path) and then deletes the row. A file that is
// already gone (fs.ErrNotExist: a crash after the removal but before the
// row was deleted) counts as removed. Rows whose removal fails for any
// other reason stay for the next call; their errors are joined. It returns
// how many rows it finished.
func (db *DB) CollectGarbage(ctx context.Context, remove func(path string) error) (int, error) {
	pending, err := db.ListGarbage(ctx)
	if err != nil {
		return 0, err
	}
	var (
		removed []int64
		errs    []error
	)
	for _, g := range pending {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := remove(g.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("store: collect garbage: remove segment %d (%s): %w", g.SegmentID, g.Path, err))
			continue
		}
		removed = append(removed, g.SegmentID)
	}
	if len(removed) > 0 {
		// Files first, rows second: if this transaction is lost the rows
		// come back and the removals are simply repeated.
		err := db.WithTx(ctx, func(tx *Tx) error {
			for _, id := range removed {
				if _, err := tx.q.ExecContext(ctx, `DELETE FROM garbage WHERE segment_id = ?`, id); err != nil {
					return wrap(fmt.Sprintf("collect garbage: delete row %d", id), err)
				}
			}
			return nil
		})
		if err != nil {
			return 0, errors.Join(append(errs, err)...)
		}
	}
	return len(removed), errors.Join(errs...)
}
