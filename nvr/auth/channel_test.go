package auth

import (
	"context"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// The audit log says where an act came from (SPEC §1 channels, R-AUDIT):
// an admin at the box (the console authenticates as "console:NAME") is on
// the console channel, an admin through the web on the remote one, and
// activation, which only the web offers, is remote.
func TestAuditChannelOfAdminActs(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	if _, err := r.svc.CreateUser(ctx, "console:admin", NewUser{Name: "bob", Password: userPW, Role: store.RoleOperator}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.CreateUser(ctx, "admin:admin", NewUser{Name: "carol", Password: userPW, Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Unlock(ctx, "console", UnlockScope{All: true}); err != nil {
		t.Fatal(err)
	}
	recs, err := r.db.ListAudit(ctx, store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.Channel{}
	for _, rec := range recs {
		got[rec.Outcome+" "+rec.Actor+" "+rec.Principal] = rec.Channel
	}
	for key, want := range map[string]store.Channel{
		"user_create console:admin bob": store.ChannelConsole,
		"user_create admin:admin carol": store.ChannelRemote,
		"activate activation admin":     store.ChannelRemote,
		"unlock console ":               store.ChannelConsole,
	} {
		if ch, ok := got[key]; !ok || ch != want {
			t.Errorf("%q: channel %q (recorded %v), want %q; all: %v", key, ch, ok, want, got)
		}
	}
}
