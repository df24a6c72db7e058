package store

import "context"

// Reader is every read the store offers. *DB reads the last committed state
// through the read pool; *Tx reads inside its transaction (what a
// read-modify-write must use). Code that works either way takes a Reader.
type Reader interface {
	GetDevice(ctx context.Context) (Device, error)
	GetPolicy(ctx context.Context) (Policy, error)

	GetUser(ctx context.Context, id int64) (User, error)
	GetUserByName(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	ListRecoveryCodes(ctx context.Context, userID int64) ([]RecoveryCode, error)
	GetRecoveryToken(ctx context.Context, principal string) (RecoveryToken, error)

	GetKeyState(ctx context.Context, id KeyID) (KeyState, error)
	ListNotOpen(ctx context.Context) ([]KeyState, error)
	ListPrincipalKeys(ctx context.Context, principal string) ([]KeyState, error)

	GetSession(ctx context.Context, idHash []byte) (Session, error)
	ListUserSessions(ctx context.Context, userID int64) ([]Session, error)

	ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)

	GetCamera(ctx context.Context, id int64) (Camera, error)
	ListCameras(ctx context.Context) ([]Camera, error)
	GetSegment(ctx context.Context, id int64) (Segment, error)
	ListSegments(ctx context.Context, cameraID, fromNS, toNS int64, limit int) ([]Segment, error)
	OldestSegments(ctx context.Context, limit int) ([]Segment, error)
	SegmentUsage(ctx context.Context) (SegmentUsage, error)
	ListGarbage(ctx context.Context) ([]Garbage, error)

	GetOutbox(ctx context.Context, id int64) (OutboxMessage, error)
	NextDueOutbox(ctx context.Context, nowNS int64, limit int) ([]OutboxMessage, error)
}

var (
	_ Reader = (*DB)(nil)
	_ Reader = (*Tx)(nil)
)
