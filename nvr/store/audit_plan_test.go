package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestAggregateQueriesUseIndexes: bumping a flooded key's aggregate is the
// write every refusal of a flood makes (R-AUDIT), so it must find its row
// by primary key (the id db.open remembers); and learning the open
// aggregates again (after the console committed) and sealing them must
// search the rows whose seq is NULL, whose number is the keys refused this
// minute, never scan the log.
func TestAggregateQueriesUseIndexes(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "latch.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		query string
		args  []any
		want  string
	}{
		{sqlBumpByID, []any{1, 0, 7}, "USING INTEGER PRIMARY KEY"},
		{sqlBumpByIDReturning, []any{1, 0, 7}, "USING INTEGER PRIMARY KEY"},
		{sqlOpenAggregateRows, nil, "(seq=?)"},
		{sqlSealAggregate, []any{1, nil, nil, 7, 1, 0}, "USING INTEGER PRIMARY KEY"},
	} {
		plan, err := db.QueryPlan(context.Background(), c.query, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan) != 1 || !strings.Contains(plan[0], "SEARCH audit_log") || !strings.Contains(plan[0], c.want) {
			t.Errorf("plan of %s = %q; want a search %s", strings.Join(strings.Fields(c.query), " "), plan, c.want)
		}
	}
}
