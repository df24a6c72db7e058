package web

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

// Audit listing bounds.
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 1000
	auditMaxCSVRows   = 100000
)

// Times a query may name: nanosecond wall times (the store's unit) end in
// April 2262.
var (
	minQueryTime = time.Unix(0, 0).UTC()
	maxQueryTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseTime reads a time from a query: RFC 3339, a date-time without zone
// (UTC), a date (UTC midnight) or unix seconds, between 1970 and 2262.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, errors.New("empty time")
	}
	if len(v) > 40 {
		return time.Time{}, errors.New("time too long")
	}
	t, err := parseTimeText(v)
	if err != nil {
		return t, err
	}
	if t.Before(minQueryTime) || !t.Before(maxQueryTime) {
		return time.Time{}, fmt.Errorf("%s is outside 1970–2261", v)
	}
	return t, nil
}

func parseTimeText(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n >= maxQueryTime.Unix() {
			return time.Time{}, fmt.Errorf("unix seconds %d out of range", n)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339 (2026-11-26T12:00:00Z), a date (2026-11-26) or unix seconds", v)
}

func isOutcomeWord(v string) bool {
	if v == "" || len(v) > 32 {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r == '_') {
			return false
		}
	}
	return true
}

type auditQuery struct {
	filter store.AuditFilter
	format string
	limit  int
}

// parseAuditQuery reads ?user=&source=&outcome=&channel=&since=&until=&before=&limit=&format=.
func parseAuditQuery(q url.Values) (auditQuery, error) {
	aq := auditQuery{format: "json", limit: auditDefaultLimit}
	for k, v := range q {
		if len(v) > 1 {
			return aq, fmt.Errorf("parameter %q given more than once", k)
		}
	}
	if v := q.Get("user"); v != "" {
		pr, err := model.CanonicalPrincipal(v)
		if err != nil {
			return aq, fmt.Errorf("user: %v", err)
		}
		aq.filter.Principal = string(pr)
	}
	if v := q.Get("source"); v != "" {
		src, err := model.ParseSource(v)
		if err != nil {
			return aq, fmt.Errorf("source: %v", err)
		}
		aq.filter.Source = src.String()
	}
	if v := q.Get("outcome"); v != "" {
		if !isOutcomeWord(v) {
			return aq, errors.New("outcome: lower-case letters and _ only (success, wrong_secret, refused, lock, unlock, …)")
		}
		aq.filter.Outcome = v
	}
	switch v := q.Get("channel"); v {
	case "":
	case "remote", "console", "system":
		aq.filter.Channel = store.Channel(v)
	default:
		return aq, errors.New("channel: remote, console or system")
	}
	if v := q.Get("since"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return aq, fmt.Errorf("since: %v", err)
		}
		aq.filter.FromNS = t.UnixNano()
	}
	if v := q.Get("until"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return aq, fmt.Errorf("until: %v", err)
		}
		aq.filter.ToNS = t.UnixNano()
	}
	if aq.filter.FromNS != 0 && aq.filter.ToNS != 0 && aq.filter.ToNS <= aq.filter.FromNS {
		return aq, errors.New("until must be after since")
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return aq, errors.New("before: a positive record id")
		}
		aq.filter.BeforeID = n
	}
	switch v := q.Get("format"); v {
	case "", "json":
	case "csv":
		aq.format = "csv"
		aq.limit = auditMaxCSVRows
	default:
		return aq, errors.New("format: json or csv")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		max := auditMaxLimit
		if aq.format == "csv" {
			max = auditMaxCSVRows
		}
		if err != nil || n < 1 || n > max {
			return aq, fmt.Errorf("limit: 1 to %d", max)
		}
		aq.limit = n
	}
	return aq, nil
}

type auditOut struct {
	ID      int64           `json:"id"`
	Seq     int64           `json:"seq"`
	Sealed  bool            `json:"sealed"`
	Time    time.Time       `json:"time"`
	User    string          `json:"user"`
	Source  string          `json:"source"`
	KeyKind string          `json:"key_kind"`
	Channel string          `json:"channel"`
	Actor   string          `json:"actor"`
	Outcome string          `json:"outcome"`
	Reason  string          `json:"reason"`
	Detail  json.RawMessage `json:"detail,omitempty"`
	Count   int64           `json:"count"`
	First   time.Time       `json:"first"`
	Last    time.Time       `json:"last"`
}

func auditJSON(a store.AuditRecord) auditOut {
	o := auditOut{ID: a.ID, Seq: a.Seq, Sealed: a.Seq != 0, Time: time.Unix(0, a.WallNS).UTC(), User: a.Principal, Source: a.Source,
		KeyKind: string(a.KeyKind), Channel: string(a.Channel), Actor: a.Actor, Outcome: a.Outcome, Reason: a.Reason,
		Count: a.Count, First: time.Unix(0, a.FirstWallNS).UTC(), Last: time.Unix(0, a.LastWallNS).UTC()}
	if len(a.Detail) > 0 {
		if json.Valid(a.Detail) {
			o.Detail = a.Detail
		} else {
			o.Detail, _ = json.Marshal(string(a.Detail))
		}
	}
	return o
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, c *caller) {
	aq, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		badRequest(w, "invalid_query", err.Error())
		return
	}
	if aq.format == "csv" {
		s.auditCSV(w, r, aq)
		return
	}
	f := aq.filter
	f.Limit = aq.limit
	recs, err := s.db.ListAudit(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]auditOut, 0, len(recs))
	for _, a := range recs {
		out = append(out, auditJSON(a))
	}
	var next int64
	if len(recs) == f.Limit {
		next = recs[len(recs)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": out, "next_before": next})
}

// csvCell defuses spreadsheet formulas: a cell a spreadsheet would evaluate
// (user names are attacker-chosen) gets a leading apostrophe.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// auditCSV streams the matching records, newest first, page by page.
func (s *Server) auditCSV(w http.ResponseWriter, r *http.Request, aq auditQuery) {
	f := aq.filter
	f.Limit = min(auditMaxLimit, aq.limit)
	first, err := s.db.ListAudit(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="latch-audit.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "seq", "time", "user", "source", "key_kind", "channel", "actor", "outcome", "reason", "count", "first", "last", "detail"})
	written := 0
	recs := first
	for len(recs) > 0 {
		for _, a := range recs {
			o := auditJSON(a)
			cw.Write([]string{strconv.FormatInt(o.ID, 10), strconv.FormatInt(o.Seq, 10), o.Time.Format(time.RFC3339Nano),
				csvCell(o.User), csvCell(o.Source), o.KeyKind, o.Channel, csvCell(o.Actor), o.Outcome, csvCell(o.Reason),
				strconv.FormatInt(o.Count, 10), o.First.Format(time.RFC3339Nano), o.Last.Format(time.RFC3339Nano), csvCell(string(o.Detail))})
			written++
		}
		if len(recs) < f.Limit || written >= aq.limit {
			break
		}
		f.BeforeID = recs[len(recs)-1].ID
		f.Limit = min(auditMaxLimit, aq.limit-written)
		if recs, err = s.db.ListAudit(r.Context(), f); err != nil {
			// The header is out: end the stream; the client sees a short file.
			s.log.Error("web: audit csv", "err", err)
			break
		}
	}
	cw.Flush()
}

type chainOut struct {
	Verified bool   `json:"verified"`
	Rows     int    `json:"rows"`
	Problem  string `json:"problem,omitempty"`
	RowID    int64  `json:"row_id,omitempty"`
	Seq      int64  `json:"seq,omitempty"`
}

func (s *Server) verifyChain(r *http.Request) (chainOut, error) {
	n, err := s.db.VerifyAuditChain(r.Context())
	if err == nil {
		return chainOut{Verified: true, Rows: n}, nil
	}
	var ce *store.AuditChainError
	if errors.As(err, &ce) {
		return chainOut{Rows: n, Problem: ce.Problem, RowID: ce.RowID, Seq: ce.Seq}, nil
	}
	return chainOut{}, err
}

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request, c *caller) {
	out, err := s.verifyChain(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
