package web

import (
	"net/http"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/auth"
)

type lockOut struct {
	Kind   string     `json:"kind"`
	User   string     `json:"user,omitempty"`
	Source string     `json:"source,omitempty"`
	Mode   string     `json:"mode"`
	Level  int        `json:"level"`
	Until  *time.Time `json:"until"`
	// RemainingSeconds is null for a hold with no timed end.
	RemainingSeconds *int64 `json:"remaining_seconds"`
	Why              string `json:"why"`
}

func lockJSON(l auth.Lock) lockOut {
	o := lockOut{Kind: l.Kind, User: l.Principal, Source: l.Source, Mode: l.Mode, Level: l.Level, Until: l.Until, Why: l.Why}
	if l.Until != nil {
		n := ceilSeconds(l.Remaining)
		o.RemainingSeconds = &n
	}
	return o
}

func (s *Server) locks(r *http.Request) ([]lockOut, error) {
	locks, err := s.auth.ListLocks(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]lockOut, 0, len(locks))
	for _, l := range locks {
		out = append(out, lockJSON(l))
	}
	return out, nil
}

func (s *Server) handleLocks(w http.ResponseWriter, r *http.Request, c *caller) {
	out, err := s.locks(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"now": s.clk.Now().UTC(), "locks": out})
}

type unlockRequest struct {
	User   *string `json:"user,omitempty"`
	Source *string `json:"source,omitempty"`
	All    bool    `json:"all,omitempty"`
}

// handleUnlock is R-UNLOCK: {"user"} opens the user's keys, {"user",
// "source"} the pair and the source key, {"all":true} every key.
func (s *Server) handleUnlock(w http.ResponseWriter, r *http.Request, c *caller) {
	var req unlockRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	var sc auth.UnlockScope
	switch {
	case req.All && (req.User != nil || req.Source != nil):
		badRequest(w, "invalid_input", `send {"all":true} alone, or "user" with an optional "source"`)
		return
	case req.All:
		sc.All = true
	case req.User == nil:
		badRequest(w, "invalid_input", `send {"user"}, {"user","source"} or {"all":true}`)
		return
	default:
		if _, err := checkUser("user", *req.User); err != nil {
			s.fail(w, r, err)
			return
		}
		sc.User = *req.User
		if req.Source != nil {
			src, err := model.ParseSource(*req.Source)
			if err != nil {
				badRequest(w, "invalid_input", "source: "+err.Error())
				return
			}
			sc.Source = src
		}
	}
	n, err := s.auth.Unlock(r.Context(), c.actor(), sc)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"opened": n})
}
