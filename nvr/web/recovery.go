package web

import (
	"errors"
	"net/http"

	"github.com/latchnvr/latch/nvr/auth"
)

// Self-service account recovery (SPEC R-RESET): two public endpoints, like
// login: no session, so no CSRF token, but the cross-origin check. The
// auth service decides and rate-limits; this file only speaks HTTP.

type recoveryStartRequest struct {
	Username string `json:"username"`
}

// recoveryStartAnswer is the one answer to every well-formed request that
// is not over this client's limit: whether the user exists, has an
// address, or has used up its codes is never said (R-ENUM).
var recoveryStartAnswer = map[string]any{
	"ok": true,
	"message": "If the account exists and has an e-mail address, a recovery code is on its way. " +
		"It works once; the e-mail says until when. Enter it below with a new password.",
}

func (s *Server) handleRecoveryStart(w http.ResponseWriter, r *http.Request) {
	if s.crossOrigin(w, r) {
		return
	}
	var req recoveryStartRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	src, err := s.clientSource(r)
	if err != nil {
		badRequest(w, "bad_source", err.Error())
		return
	}
	if err := s.auth.StartRecovery(r.Context(), req.Username, src); err != nil {
		s.recoveryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, recoveryStartAnswer)
}

type recoveryFinishRequest struct {
	Username    string `json:"username"`
	Code        string `json:"code"`
	NewPassword string `json:"new_password"`
}

func (s *Server) handleRecoveryFinish(w http.ResponseWriter, r *http.Request) {
	if s.crossOrigin(w, r) {
		return
	}
	var req recoveryFinishRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Code == "" {
		badRequest(w, "invalid_input", "code is required: the code from the e-mail, a recovery code, or your authenticator's code")
		return
	}
	src, err := s.clientSource(r)
	if err != nil {
		badRequest(w, "bad_source", err.Error())
		return
	}
	err = s.auth.FinishRecovery(r.Context(), auth.Recovery{Username: req.Username, Code: req.Code, NewPassword: req.NewPassword, Source: src})
	if err != nil {
		s.recoveryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true,
		"message": "Your password was reset and every session signed out. Sign in with the new password."})
}

// recoveryError answers the recovery service's refusals; anything else is
// fail's.
func (s *Server) recoveryError(w http.ResponseWriter, r *http.Request, err error) {
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		body := lockedResponse{Error: "locked", Scope: te.Scope}
		if te.Scope == "source" {
			n := setRetryAfter(w, te.RetryAfter)
			body.RetryAfterSeconds = &n
			body.Message = "Too many recovery attempts from this network address. Wait until the countdown ends."
		} else {
			// As for a principal lock (R-DISCLOSE): no time for a key many
			// sources drive, or a botnet would schedule its guesses.
			body.Message = "Too many wrong authenticator or recovery codes for this account. Use the code from the e-mail instead, or try again later."
		}
		writeJSON(w, http.StatusTooManyRequests, body)
	case errors.Is(err, auth.ErrInvalidCode):
		writeError(w, http.StatusUnauthorized, "invalid_code", "That code is wrong, expired or already used. Ask for a new one if you need to.")
	default:
		s.fail(w, r, err)
	}
}
