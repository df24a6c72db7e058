package web

import (
	"net/http"

	"github.com/latchnvr/latch/nvr/auth"
)

// Device settings other than the lock policy (which has its own
// endpoints): for now the concurrent-session policy.

type settingsOut struct {
	SessionsPolicy string `json:"sessions_policy"`
	// SessionsPolicySource: "flag" (latch serve --sessions-policy, until
	// changed here or the next start), "device" (saved here) or "default".
	SessionsPolicySource string   `json:"sessions_policy_source"`
	SessionsPolicies     []string `json:"sessions_policies"`
}

func (s *Server) settingsJSON() settingsOut {
	p, src := s.auth.SessionPolicy()
	o := settingsOut{SessionsPolicy: string(p), SessionsPolicySource: src}
	for _, v := range auth.SessionPolicies {
		o.SessionsPolicies = append(o.SessionsPolicies, string(v))
	}
	return o
}

func (s *Server) handleGetSettings(w http.ResponseWriter, r *http.Request, c *caller) {
	writeJSON(w, http.StatusOK, s.settingsJSON())
}

type settingsPatch struct {
	SessionsPolicy *string `json:"sessions_policy,omitempty"`
}

func (s *Server) handlePatchSettings(w http.ResponseWriter, r *http.Request, c *caller) {
	var req settingsPatch
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.SessionsPolicy == nil {
		badRequest(w, "invalid_input", "nothing to change: send sessions_policy")
		return
	}
	p, err := auth.ParseSessionPolicy(*req.SessionsPolicy)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.auth.SetSessionPolicy(r.Context(), c.actor(), p); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.settingsJSON())
}
