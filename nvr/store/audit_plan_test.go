package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestAggregateBumpUsesTheOpenIndex: bumping a flooded key's aggregate is
// the write every refusal of a flood makes (R-AUDIT), so it must find its
// row through the partial index of open aggregates, whose size is the
// number of keys refused this minute, never by scanning the log.
func TestAggregateBumpUsesTheOpenIndex(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "latch.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	plan, err := db.QueryPlan(context.Background(), sqlBumpAggregate, 1, 0, "pair", "alice", "192.0.2.1", "remote", "refused", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX audit_open_aggregate") {
		t.Fatalf("plan of the bump = %q; want a search of audit_open_aggregate", plan)
	}
}
