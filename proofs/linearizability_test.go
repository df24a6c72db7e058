package proofs

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/latchnvr/latch/model"
)

// linHistory builds hand-made histories against the latch preset with a
// pair threshold of 5: each op is (client, principal, source, outcome,
// call, return, observed output). Instants are the service's decision
// instants.
type linOp struct {
	client       int
	principal    string
	source       string
	outcome      model.Outcome
	now          time.Duration
	call, ret    int64
	verdict      model.Verdict
	remaining    int
	scope        model.Scope
	retryAfter   time.Duration
	op           LinOp
	consoleEvent bool
}

func linOps(t *testing.T, ops []linOp) []porcupine.Operation {
	t.Helper()
	var out []porcupine.Operation
	for _, o := range ops {
		src := ""
		if o.source != "" {
			s, err := model.ParseSource(o.source)
			if err != nil {
				t.Fatal(err)
			}
			src = s.String()
		}
		in := LinInput{Op: o.op, Principal: model.Principal(o.principal), Source: src, Now: model.Instant(o.now),
			Event: model.Event{Attempt: model.Attempt{Role: model.RoleViewer}, Outcome: o.outcome}}
		if o.consoleEvent {
			in.Event.Channel = model.Console
		}
		outp := LinOutput{}
		if o.op == LinAttempt {
			outp = LinOutput{Verdict: o.verdict, Scope: o.scope, RetryAfter: o.retryAfter, Remaining: o.remaining}
		}
		out = append(out, porcupine.Operation{ClientId: o.client, Input: in, Call: o.call, Output: outp, Return: o.ret})
	}
	return out
}

func linPolicy(t *testing.T) model.Policy {
	return preset(t, "latch", "source.threshold=0", "principal.threshold=0", "pair.replayDedup=false")
}

func check(t *testing.T, p model.Policy, ops []porcupine.Operation) porcupine.CheckResult {
	t.Helper()
	res, _ := porcupine.CheckOperationsVerbose(LinearizabilityModel(p), ops, 10*time.Second)
	return res
}

// Three sequential wrong guesses, then two parallel ones that saw 1 and 0
// left (one of them locking the pair), then a refusal: linearizable.
func TestLinearizableHistory(t *testing.T) {
	w := model.WrongSecret
	s := time.Second
	ops := linOps(t, []linOp{
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: 0, call: 1, ret: 2, verdict: model.Failed, remaining: 4},
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: 1 * s, call: 3, ret: 4, verdict: model.Failed, remaining: 3},
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: 2 * s, call: 5, ret: 6, verdict: model.Failed, remaining: 2},
		{client: 1, principal: "alice", source: "10.0.0.2", outcome: w, now: 3 * s, call: 7, ret: 10, verdict: model.Failed, remaining: 0},
		{client: 2, principal: "alice", source: "10.0.0.2", outcome: w, now: 3 * s, call: 8, ret: 9, verdict: model.Failed, remaining: 1},
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: model.RightSecret, now: 4 * s, call: 11, ret: 12,
			verdict: model.Refused, scope: model.ScopePair, retryAfter: time.Minute},
		// Another principal, interleaved: its own partition.
		{client: 3, principal: "bob", source: "10.0.0.3", outcome: w, now: 3 * s, call: 7, ret: 12, verdict: model.Failed, remaining: 4},
	})
	if res := check(t, linPolicy(t), ops); res != porcupine.Ok {
		t.Fatalf("a linearizable history checks as %s", res)
	}
}

// Two parallel wrong guesses that both observed one try left: serially the
// first leaves 1 and the second 0 (and locks). Not linearizable: the
// service let both read the count below the threshold.
func TestNonLinearizableHistory(t *testing.T) {
	w := model.WrongSecret
	s := time.Second
	ops := linOps(t, []linOp{
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: 0, call: 1, ret: 2, verdict: model.Failed, remaining: 4},
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: 1 * s, call: 3, ret: 4, verdict: model.Failed, remaining: 3},
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: 2 * s, call: 5, ret: 6, verdict: model.Failed, remaining: 2},
		{client: 1, principal: "alice", source: "10.0.0.2", outcome: w, now: 3 * s, call: 7, ret: 10, verdict: model.Failed, remaining: 1},
		{client: 2, principal: "alice", source: "10.0.0.2", outcome: w, now: 3 * s, call: 8, ret: 9, verdict: model.Failed, remaining: 1},
	})
	res, info := porcupine.CheckOperationsVerbose(LinearizabilityModel(linPolicy(t)), ops, 10*time.Second)
	if res != porcupine.Illegal {
		t.Fatalf("two parallel guesses that both saw one try left check as %s, want Illegal", res)
	}
	_ = info
}

// An instant going backwards along the only possible order is not a
// history the service could produce.
func TestLinearizabilityInstantsNeverGoBack(t *testing.T) {
	w := model.WrongSecret
	ops := linOps(t, []linOp{
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: 2 * time.Second, call: 1, ret: 2, verdict: model.Failed, remaining: 4},
		{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: time.Second, call: 3, ret: 4, verdict: model.Failed, remaining: 3},
	})
	if res := check(t, linPolicy(t), ops); res != porcupine.Illegal {
		t.Fatalf("got %s, want Illegal", res)
	}
}

// Admin operations and the console are part of the model.
func TestLinearizabilityAdminOps(t *testing.T) {
	w := model.WrongSecret
	s := time.Second
	var ops []linOp
	for i := 0; i < 5; i++ {
		ops = append(ops, linOp{client: 0, principal: "alice", source: "10.0.0.2", outcome: w, now: time.Duration(i) * s,
			call: int64(2*i + 1), ret: int64(2*i + 2), verdict: model.Failed, remaining: 4 - i})
	}
	ops = append(ops,
		linOp{client: 1, op: LinUnlock, principal: "alice", now: 5 * s, call: 11, ret: 12},
		linOp{client: 0, principal: "alice", source: "10.0.0.2", outcome: model.RightSecret, now: 6 * s, call: 13, ret: 14, verdict: model.Allowed, remaining: 5},
		linOp{client: 1, op: LinDisable, principal: "alice", now: 7 * s, call: 15, ret: 16},
		linOp{client: 2, principal: "alice", consoleEvent: true, outcome: model.RightSecret, now: 8 * s, call: 17, ret: 18,
			verdict: model.Refused, scope: model.ScopeDisabled},
	)
	if res := check(t, linPolicy(t), linOps(t, ops)); res != porcupine.Ok {
		t.Fatalf("got %s, want Ok", res)
	}
}

// Principals that share a source are one partition when source keys count
// failures; otherwise every principal is its own.
func TestLinearizabilityPartition(t *testing.T) {
	in := func(pr, src string) LinInput {
		return LinInput{Op: LinAttempt, Principal: model.Principal(pr), Source: src}
	}
	ins := []LinInput{in("a", "1.1.1.1"), in("b", "2.2.2.2"), in("c", "1.1.1.1"), in("d", "3.3.3.3"), in("b", "")}
	if got := linPartition(ins, true); len(got) != 3 || len(got[0]) != 2 || got[0][1] != 2 {
		t.Fatalf("coupled partition: %v", got)
	}
	if got := linPartition(ins, false); len(got) != 4 {
		t.Fatalf("uncoupled partition: %v", got)
	}
}
