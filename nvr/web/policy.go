package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/nvr/store"
)

type fieldOut struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type policyOut struct {
	YAML      string     `json:"yaml"`
	Enabled   bool       `json:"enabled"`
	Preset    string     `json:"preset"`
	Fields    []fieldOut `json:"fields"`
	UpdatedAt *time.Time `json:"updated_at"`
	UpdatedBy string     `json:"updated_by"`
	Warnings  []string   `json:"warnings"`
}

func policyWarnings(p model.Policy) []string {
	w := []string{}
	if p.Disabled {
		w = append(w, "lockout protection is disabled: every login attempt is admitted and no failure is counted")
	}
	return w
}

func policyJSON(p model.Policy) policyOut {
	o := policyOut{YAML: string(policyfile.Marshal(p)), Enabled: !p.Disabled, Preset: p.Preset, Warnings: policyWarnings(p)}
	for _, f := range model.Fields() {
		o.Fields = append(o.Fields, fieldOut{Name: f.Name, Value: f.Get(&p)})
	}
	return o
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request, c *caller) {
	o := policyJSON(s.auth.Policy())
	sp, err := s.db.GetPolicy(r.Context())
	switch {
	case err == nil:
		o.UpdatedAt, o.UpdatedBy = timeJSON(sp.UpdatedNS), sp.UpdatedBy
	case !errors.Is(err, store.ErrNotFound):
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

type policyRequest struct {
	YAML              string `json:"yaml"`
	AcceptFailedProof bool   `json:"accept_failed_proof,omitempty"`
}

type policyProblem struct {
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

type invalidPolicy struct {
	Error    string          `json:"error"`
	Message  string          `json:"message"`
	Problems []policyProblem `json:"problems"`
}

// yamlTypes are the media types a raw policy file may be sent as.
var yamlTypes = []string{"application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}

// readPolicy reads a policy from {"yaml": "..."} or a raw YAML body and
// validates it (R-VALID), answering 400 with every problem.
func readPolicy(w http.ResponseWriter, r *http.Request) (model.Policy, bool, bool) {
	body, mt, derr := readBody(w, r, yamlTypes...)
	if derr != nil {
		derr.write(w)
		return model.Policy{}, false, false
	}
	req := policyRequest{YAML: string(body), AcceptFailedProof: r.URL.Query().Get("accept_failed_proof") == "true"}
	if mt == "application/json" {
		req = policyRequest{}
		if derr := unmarshalStrict(body, &req); derr != nil {
			derr.write(w)
			return model.Policy{}, false, false
		}
	}
	p, err := policyfile.Unmarshal([]byte(req.YAML))
	if err != nil {
		out := invalidPolicy{Error: "invalid_policy", Message: err.Error()}
		var es policyfile.Errors
		var e *policyfile.Error
		switch {
		case errors.As(err, &es):
			for _, e := range es {
				out.Problems = append(out.Problems, policyProblem{e.Line, e.Column, e.Field, e.Reason})
			}
		case errors.As(err, &e):
			out.Problems = append(out.Problems, policyProblem{e.Line, e.Column, e.Field, e.Reason})
		default:
			out.Problems = append(out.Problems, policyProblem{Reason: err.Error()})
		}
		writeJSON(w, http.StatusBadRequest, out)
		return model.Policy{}, false, false
	}
	return p, req.AcceptFailedProof, true
}

func (s *Server) handleValidatePolicy(w http.ResponseWriter, r *http.Request, c *caller) {
	p, _, ok := readPolicy(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true, "warnings": policyWarnings(p), "yaml": string(policyfile.Marshal(p))})
}

type proofOut struct {
	Proved  bool   `json:"proved"` // false: no prover on this build
	Holds   bool   `json:"holds"`
	Summary string `json:"summary"`
}

var errProofPanicked = errors.New("the policy proof failed unexpectedly")

// proveOne runs the configured prover, one proof at a time.
func (s *Server) proveOne(ctx context.Context, p model.Policy) (proofOut, error) {
	if s.cfg.Prove == nil {
		return proofOut{Holds: true, Summary: "no prover on this build: the policy was validated but not proved"}, nil
	}
	select {
	case s.prove <- struct{}{}:
	case <-ctx.Done():
		return proofOut{}, ctx.Err()
	}
	type result struct {
		out proofOut
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() { <-s.prove }()
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("web: policy proof panicked", "panic", v)
				ch <- result{err: fmt.Errorf("%w: %v", errProofPanicked, v)}
			}
		}()
		summary, holds := s.cfg.Prove(p)
		ch <- result{out: proofOut{Proved: true, Holds: holds, Summary: summary}}
	}()
	select {
	case res := <-ch:
		return res.out, res.err
	case <-ctx.Done():
		return proofOut{}, ctx.Err()
	}
}

func (s *Server) handleProvePolicy(w http.ResponseWriter, r *http.Request, c *caller) {
	p, _, ok := readPolicy(w, r)
	if !ok {
		return
	}
	out, err := s.proveOne(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handlePutPolicy validates, proves and only then saves. A policy whose
// proof reports a failing property is saved only with accept_failed_proof
// (a per-user-only preset fails P-NODOS by design, SPEC §8).
func (s *Server) handlePutPolicy(w http.ResponseWriter, r *http.Request, c *caller) {
	p, accept, ok := readPolicy(w, r)
	if !ok {
		return
	}
	proof, err := s.proveOne(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !proof.Holds && !accept {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "proof_failed",
			"message": "a policy property does not hold (see summary): send accept_failed_proof to save it anyway",
			"summary": proof.Summary, "holds": false, "proved": proof.Proved})
		return
	}
	if err := s.auth.SetPolicy(r.Context(), c.actor(), p); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"saved": true, "proof": proof, "policy": policyJSON(p)})
}
